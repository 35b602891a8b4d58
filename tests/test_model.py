"""The pyfunc model each run logs: loaded back with runs:/<id>/model it predicts in the targets'
original units, equal to the core's forward pass on scaled inputs (the mean over seeds for a
batched run), and `mlflow models predict --env-manager local` serves it from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import all_runs, clean_env, mlflow_client, run_cli

#: The lecture's scaling of sleep_study: inputs ÷ training maxima (10, 5), scores ÷ 100.
SLEEP_X = np.array([[3.0, 5.0], [5.0, 1.0], [10.0, 2.0], [6.0, 1.5], [4.0, 5.5], [8.0, 0.0]])
SLEEP_X_MAX, SLEEP_Y_SCALE = np.array([10.0, 5.0]), 100.0


def train_one(train, store: str, *args: str):
    """One short sleep_study run (plus ``args``) into ``store``; its Run."""
    done = train("optim.epochs=40", *args)
    assert done.returncode == 0, done.stderr
    (run,) = all_runs(store)
    return run


def weights_of(uri: str, run_id: str, tmp_path: Path) -> dict[str, np.ndarray]:
    path = mlflow_client(uri).download_artifacts(run_id, "weights.npz", str(tmp_path))
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def load_model(uri: str, run_id: str):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.pyfunc.load_model(f"runs:/{run_id}/model")


def test_single_run_predicts_in_score_units(train, store, tmp_path):
    from nnexp.core import forward

    run = train_one(train, store)
    model = load_model(store, run.info.run_id)
    weights = weights_of(store, run.info.run_id, tmp_path)
    expected = SLEEP_Y_SCALE * forward(SLEEP_X / SLEEP_X_MAX, weights["W1"], weights["W2"])
    predicted = model.predict(SLEEP_X)
    assert predicted.shape == (len(SLEEP_X), 1)
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)
    assert predicted.min() > 40 and predicted.max() < 100  # test scores, not sigmoid outputs

    assert model.metadata.get_input_schema().inputs[0].shape == (-1, 2)
    assert model.metadata.get_output_schema().inputs[0].shape == (-1, 1)
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/model"))
    example = json.loads((local / "input_example.json").read_text())
    assert example[0] == [3.0, 5.0]  # the first training row, in hours
    assert not [p for p in local.rglob("*") if p.suffix in (".pkl", ".pickle", ".cloudpickle")]
    assert (local / "model_code.py").is_file()
    assert {p.name for p in (local / "artifacts").iterdir()} == {"weights.npz", "scalers.json"}
    from importlib.metadata import version

    pins = {f"{name}=={version(name)}" for name in ("mlflow", "numpy")}
    assert set((local / "requirements.txt").read_text().split()) == pins


def test_batched_seeds_predict_the_mean_of_the_seeds(train, store, tmp_path):
    from nnexp.core import forward

    run = train_one(train, store, "train.seeds=3")
    weights = weights_of(store, run.info.run_id, tmp_path)
    assert weights["W1"].shape == (3, 2, 3) and list(weights["seeds"]) == [0, 1, 2]
    each = [
        SLEEP_Y_SCALE * forward(SLEEP_X / SLEEP_X_MAX, weights["W1"][s], weights["W2"][s])
        for s in range(3)
    ]
    predicted = load_model(store, run.info.run_id).predict(SLEEP_X)
    assert predicted.shape == (len(SLEEP_X), 1)
    np.testing.assert_allclose(predicted, np.mean(each, axis=0), rtol=1e-12)
    assert not np.allclose(each[0], each[1])  # the seeds really differ


def test_standardised_dataset_unscales_inputs_and_targets(train, store, tmp_path):
    from nnexp.core import forward
    from nnexp.data import load_dataset
    from nnexp.run.job import data_stream

    run = train_one(train, store, "dataset=diabetes", "model.hidden=4", "optim.lr=1")
    data = load_dataset({"name": "diabetes", "test_fraction": 0.2}, data_stream(0))
    X = data.x_scaler.inverse(data.X_test)
    weights = weights_of(store, run.info.run_id, tmp_path)
    expected = data.y_scaler.inverse(forward(data.X_test, weights["W1"], weights["W2"]))
    predicted = load_model(store, run.info.run_id).predict(X)
    np.testing.assert_allclose(predicted, expected, rtol=1e-9)
    assert predicted.min() > 20 and predicted.max() < 400  # disease progression units


@pytest.mark.slow
def test_mlflow_models_predict_serves_it_without_an_environment_rebuild(train, store, tmp_path):
    run = train_one(train, store, "train.seeds=2")
    request = tmp_path / "input.json"
    request.write_text(json.dumps({"inputs": SLEEP_X.tolist()}))
    done = run_cli(
        "mlflow",
        "models",
        "predict",
        "--env-manager",
        "local",
        "-m",
        f"runs:/{run.info.run_id}/model",
        "-i",
        str(request),
        "--content-type",
        "json",
        cwd=tmp_path,
        env=clean_env(MLFLOW_TRACKING_URI=store),
    )
    assert done.returncode == 0, done.stderr
    served = np.array(json.loads(done.stdout.strip().splitlines()[-1])["predictions"])
    local = load_model(store, run.info.run_id).predict(SLEEP_X)
    np.testing.assert_allclose(served, local, rtol=1e-12)
