"""`nnexp reproduce RUN_ID` end to end: a real run retrained by the real command line into a new
run, compared bit for bit; a tampered config is reported with its differences; provenance
changes are warned about; bad input gives one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import all_runs, assert_one_line_error, mlflow_client, run_cli, sweep_runs

pytestmark = pytest.mark.slow


def reproduce(tmp_path, store: str, run_id: str):
    return run_cli("nnexp", "reproduce", run_id, "--tracking-uri", store, cwd=tmp_path)


def reproduction_of(store: str, run_id: str, experiment: str = "nnexp"):
    (found,) = [r for r in all_runs(store, experiment) if r.data.tags.get("nnexp.reproduces")]
    assert found.data.tags["nnexp.reproduces"] == run_id
    return found


def test_a_single_run_is_reproduced_bit_for_bit(train, store, tmp_path):
    assert train("optim.epochs=50", "model.hidden=4").returncode == 0
    (original,) = all_runs(store)
    done = reproduce(tmp_path, store, original.info.run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    for name in ("W1", "W2", "train_cost", "test_cost"):
        assert f"{name}: identical" in lines
    new = reproduction_of(store, original.info.run_id)
    assert (
        lines[-1]
        == f"identical: run {new.info.run_id} reproduces {original.info.run_id} bit for bit"
    )
    assert new.data.params == original.data.params
    assert new.data.metrics == original.data.metrics
    assert (tmp_path / "outputs" / "reproduce").is_dir()


def test_a_batched_sweep_child_is_reproduced(tmp_path, store):
    done = run_cli(
        "nnexp-train",
        "-m",
        f"tracking.uri={store}",
        "optim.epochs=30",
        "train.seeds=3",
        "model.hidden=2,3",
        "tracking.log_model=false",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    _, children = sweep_runs(store)
    child = children[0]
    done = reproduce(tmp_path, store, child.info.run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seeds: identical" in done.stdout and "test_cost/seed_2: identical" in done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("identical: ")
    new = reproduction_of(store, child.info.run_id)
    assert "mlflow.parentRunId" not in new.data.tags  # a run of its own, not a sweep job


def test_a_changed_config_and_environment_are_reported(train, store, tmp_path):
    assert train("optim.epochs=40", "tracking.log_model=false").returncode == 0
    (original,) = all_runs(store)
    run_id = original.info.run_id
    client = mlflow_client(store)
    config_path = client.download_artifacts(run_id, "config.yaml", str(tmp_path))
    config = yaml.safe_load(Path(config_path).read_text())
    config["optim"]["lr"] = 1.5
    edited = tmp_path / "edited" / "config.yaml"
    edited.parent.mkdir()
    edited.write_text(yaml.safe_dump(config))
    client.log_artifact(run_id, str(edited))
    client.set_tag(run_id, "nnexp.version.numpy", "1.0.0")
    client.set_tag(run_id, "nnexp.code_version", "0000000")

    done = reproduce(tmp_path, store, run_id)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "warning: the run used numpy 1.0.0" in done.stderr
    assert "warning: the run was trained by code 0000000" in done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("W1: largest |Δ| = ") for line in lines), lines
    assert any(line.startswith("test_cost: largest |Δ| = ") for line in lines), lines
    new = reproduction_of(store, run_id)
    assert lines[-1] == f"different: run {new.info.run_id} does not reproduce {run_id}"
    assert new.data.params["optim.lr"] == "1.5"


def test_bad_run_ids_are_one_line(tmp_path, store):
    done = run_cli(
        "nnexp-train",
        "-m",
        f"tracking.uri={store}",
        "optim.epochs=5",
        "model.hidden=0,2",
        "tracking.log_model=false",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    (parent,), children = sweep_runs(store)
    rejected = next(c for c in children if c.info.status == "FAILED")
    unknown = "0123456789abcdef0123456789abcdef"
    assert_one_line_error(reproduce(tmp_path, store, unknown), f"no run with id {unknown}")
    assert_one_line_error(reproduce(tmp_path, store, parent.info.run_id), "sweep's parent")
    assert_one_line_error(reproduce(tmp_path, store, rejected.info.run_id), "has no metrics")
    missing = f"sqlite:///{tmp_path}/elsewhere/mlflow.db"
    assert_one_line_error(reproduce(tmp_path, missing, unknown), "no MLflow store")
    assert len(all_runs(store)) == 3  # nothing was retrained
