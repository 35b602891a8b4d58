"""`nnexp-train` end to end, in-process (the binary where the process is the subject: ``python -m``,
``--help``, mlflow never imported), a real SQLite store read back with MlflowClient."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from conftest import all_runs, clean_env, mlflow_client, run_app, run_train_probe


def only_run(uri):
    runs = all_runs(uri)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def history(client, run_id, key):
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def download(client, run_id, path, tmp_path):
    return Path(client.download_artifacts(run_id, path, str(tmp_path)))


def core_result(epochs: int, seed: int = 0):
    """The same run as the CLI's defaults, computed in-process by the core."""
    from nnexp.core import Hyperparams, init_weights, train
    from nnexp.data import load_dataset
    from nnexp.run.job import model_streams

    data = load_dataset({"name": "sleep_study"}, np.random.default_rng(0))
    rngs = [model_streams(seed)]
    W1, W2 = init_weights(2, 3, 1, "normal", rngs)
    hp = Hyperparams(lr=2.0, epochs=epochs)
    return train(W1, W2, (data.X_train, data.y_train), (data.X_test, data.y_test), hp, rngs)


def test_single_run_is_recorded_completely(train, store, tmp_path):
    done = train("optim.epochs=30")
    assert done.returncode == 0, done.stderr
    run = only_run(store)
    assert run.info.status == "FINISHED"
    last = done.stdout.strip().splitlines()[-1]
    assert run.info.run_id in last and "train_cost=" in last and "test_cost=" in last
    assert f"mlflow ui --backend-store-uri {store}" in last

    params = run.data.params
    expected = {
        "seed": "0",
        "model.hidden": "3",
        "model.init": "normal",
        "optim.lr": "2.0",
        "optim.epochs": "30",
        "regularization.l2": "0.0",
        "cost.reduction": "mean",
        "dataset.name": "sleep_study",
        "dataset.n_train": "4",
        "dataset.n_test": "4",
    }
    assert expected.items() <= params.items()
    assert not any(key.startswith("tracking.") for key in params)

    client = mlflow_client(store)
    reference = core_result(30)
    _, train_cost, test_cost = reference.history.as_arrays()
    for key, costs in (("train_cost", train_cost), ("test_cost", test_cost)):
        points = history(client, run.info.run_id, key)
        assert [step for step, _ in points] == list(range(31))
        assert np.allclose([value for _, value in points], costs[:, 0], rtol=1e-12)
        best = int(np.argmin(costs[:, 0]))  # the summary the UI sorts by, logged at the last step
        assert np.isclose(run.data.metrics[f"best_{key}"], costs[best, 0], rtol=1e-12, atol=0)
        assert run.data.metrics[f"best_{key}_epoch"] == best
    assert not any("accuracy" in key or "norm" in key for key in run.data.metrics)

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"weights.npz", "config.yaml", "overrides.yaml", "cost_curve.png"} <= artifacts
    with np.load(
        download(client, run.info.run_id, "weights.npz", tmp_path), allow_pickle=False
    ) as w:
        assert np.array_equal(w["W1"], reference.W1[0]) and np.array_equal(w["W2"], reference.W2[0])
    config = yaml.safe_load(download(client, run.info.run_id, "config.yaml", tmp_path).read_text())
    assert config["optim"]["epochs"] == 30 and config["model"]["init"] == "normal"
    overrides = yaml.safe_load(
        download(client, run.info.run_id, "overrides.yaml", tmp_path).read_text()
    )
    assert "optim.epochs=30" in overrides
    png = download(client, run.info.run_id, "cost_curve.png", tmp_path).read_bytes()
    assert png.startswith(b"\x89PNG")

    tags = run.data.tags
    assert tags["nnexp.git_commit"] and tags["nnexp.git_dirty"] in ("true", "false")
    assert {"nnexp.version.nnexp", "nnexp.version.numpy", "nnexp.version.mlflow"} <= tags.keys()
    assert tags["nnexp.status"] == "finished"
    assert run.inputs.dataset_inputs and run.inputs.dataset_inputs[0].dataset.name == "sleep_study"


def test_same_config_twice_gives_identical_weights_and_curves(train, store, tmp_path):
    for _ in range(2):
        done = train("optim.epochs=25", "model.init=xavier", "seed=3", "tracking.log_model=false")
        assert done.returncode == 0, done.stderr
    client = mlflow_client(store)
    runs = all_runs(store)
    weights = []
    for run in runs:
        with np.load(
            download(client, run.info.run_id, "weights.npz", tmp_path / run.info.run_id)
        ) as w:
            weights.append((w["W1"].copy(), w["W2"].copy()))
    assert np.array_equal(weights[0][0], weights[1][0]) and np.array_equal(
        weights[0][1], weights[1][1]
    )
    curves = [history(client, run.info.run_id, "train_cost") for run in runs]
    assert curves[0] == curves[1]


def test_default_store_is_mlflow_db_in_the_launch_folder(tmp_path):
    done = run_app("nnexp-train", "optim.epochs=3", "tracking.log_model=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mlflow.db").is_file()
    assert f"sqlite:///{tmp_path}/mlflow.db" in done.stdout
    assert len(all_runs(f"sqlite:///{tmp_path}/mlflow.db")) == 1


def test_environment_variable_chooses_the_store(tmp_path, empty_store_file):
    shutil.copyfile(empty_store_file, tmp_path / "elsewhere.db")
    uri = f"sqlite:///{tmp_path}/elsewhere.db"
    env = clean_env(MLFLOW_TRACKING_URI=uri)
    done = run_app(
        "nnexp-train", "optim.epochs=3", "tracking.log_model=false", cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "mlflow.db").exists() and len(all_runs(uri)) == 1


def test_python_dash_m_is_the_same_app(tmp_path, store):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnexp",
            f"tracking.uri={store}",
            "optim.epochs=4",
            "model.hidden=5",
            "tracking.log_model=false",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert only_run(store).data.params["model.hidden"] == "5"


def test_log_every_keeps_epoch_zero_and_the_last(train, store):
    assert (
        train("optim.epochs=20", "tracking.log_every=7", "tracking.log_model=false").returncode == 0
    )
    client = mlflow_client(store)
    steps = [s for s, _ in history(client, only_run(store).info.run_id, "test_cost")]
    assert steps == [0, 7, 14, 20]


def test_readme_example_on_digits(train, store):
    done = train(
        "dataset=digits",
        "model.hidden=32",
        "optim.lr=2",
        "optim.epochs=15",
        "regularization.l2=1e-4",
    )
    assert done.returncode == 0, done.stderr
    run = only_run(store)
    assert run.data.params["dataset.k"] == "10" and run.data.params["dataset.d"] == "64"
    assert len(history(mlflow_client(store), run.info.run_id, "train_cost")) == 16


def test_mini_batches_and_sum_reduction_run(train, store):
    done = train(
        "optim=sgd",
        "optim.epochs=5",
        "cost.reduction=sum",
        "dataset=sine",
        "tracking.log_model=false",
    )
    assert done.returncode == 0, done.stderr
    params = only_run(store).data.params
    assert params["optim.batch_size"] == "32" and params["cost.reduction"] == "sum"


def test_untracked_run_never_imports_mlflow(tmp_path):
    done = run_train_probe("tracking=off", "optim.epochs=3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "mlflow loaded: False" in done.stdout
    assert not (tmp_path / "mlflow.db").exists()
    weights = list(tmp_path.glob("outputs/*/*/weights.npz"))
    assert len(weights) == 1


def test_divergence_fails_the_run_and_says_why(train, store):
    done = train("optim.lr=1e308", "cost.reduction=sum", "dataset=diabetes", "optim.epochs=50")
    assert done.returncode == 1
    assert "training diverged" in done.stderr and "Traceback" not in done.stderr
    run = only_run(store)
    assert run.info.status == "FAILED"
    assert run.data.tags["nnexp.status"] == "diverged"
    assert "lower optim.lr" in run.data.tags["nnexp.error"]
    points = history(mlflow_client(store), run.info.run_id, "train_cost")
    assert points and points[0][0] == 0 and len(points) < 51
    assert all(np.isfinite(value) for _, value in points)


def test_help_lists_the_groups(tmp_path):
    """Every option of every group, the defaults, and nothing run or written."""
    from nnexp.core import OPTIMIZERS
    from nnexp.data import DATASETS

    done = run_app("nnexp-train", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    section = done.stdout.split("== Configuration groups ==", 1)[1].split("== Config ==", 1)[0]
    groups = dict(line.split(": ", 1) for line in section.splitlines() if ": " in line)
    assert groups["dataset"].split(", ") == sorted(DATASETS)
    assert groups["optim"].split(", ") == sorted(OPTIMIZERS)
    assert groups["regularization"] == "l2, none"
    assert groups["tracking"] == "local, off, server"
    assert "  hidden: 3\n" in done.stdout and "  name: sleep_study\n" in done.stdout
    assert list(tmp_path.iterdir()) == []
