"""Load without loss: 48 jobs on 4 joblib workers into one fresh store, SQLite and server.
The assertions are counts; the wall time and jobs/s go to test-artifacts/load.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import REPO, all_runs, metric_steps, mlflow_client, run_cli, sweep_runs

#: Both on one pytest-xdist worker, one after the other: each loads the cores, both write load.json.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("load")]

EPOCHS = 3
JOBS = 48
GRID = ["model.hidden=1,2,3,4,5,6,7,8", "optim.lr=0.5,1,2", "regularization.l2=0,1e-4"]
FIGURES = REPO / "test-artifacts" / "load.json"


def load_sweep(tmp_path: Path, uri: str, experiment: str) -> float:
    """Run the 48-job sweep into ``uri``'s ``experiment``; its wall time in seconds."""
    started = time.monotonic()
    done = run_cli(
        "nnexp-train",
        "-m",
        f"tracking.uri={uri}",
        f"tracking.experiment={experiment}",
        f"optim.epochs={EPOCHS}",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=4",
        *GRID,
        cwd=tmp_path,
        timeout=1800,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    return seconds


def assert_nothing_lost(uri: str, experiment: str) -> None:
    """One FINISHED parent counting 48 finished children, each with both full histories and its
    files, and the best child's READY model on the parent; nothing else in the experiment."""
    parents, children = sweep_runs(uri, experiment)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == JOBS and len(all_runs(uri, experiment)) == JOBS + 1
    assert {c.info.status for c in children} == {"FINISHED"}
    assert len({c.data.tags["nnexp.config_hash"] for c in children}) == JOBS
    metrics = parents[0].data.metrics
    assert metrics["children_finished"] == JOBS
    assert metrics["children_failed"] == 0 and metrics["children_skipped"] == 0
    client = mlflow_client(uri)
    for child in children:
        for key in ("train_cost", "test_cost"):
            assert metric_steps(uri, child.info.run_id, key) == list(range(EPOCHS + 1))
        files = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"weights.npz", "config.yaml", "cost_curve.png", "costs.csv"} <= files
    models = client.search_logged_models([children[0].info.experiment_id], max_results=1000)
    assert [m.source_run_id for m in models if m.status == "READY"] == [parents[0].info.run_id]
    assert parents[0].data.tags["nnexp.model_of"] == parents[0].data.tags["nnexp.best_run_id"]


def record(store: str, seconds: float) -> None:
    """Add this store kind's wall time and throughput to test-artifacts/load.json."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    figures[store] = {
        "jobs": JOBS,
        "epochs": EPOCHS,
        "workers": 4,
        "seconds": round(seconds, 1),
        "jobs_per_second": round(JOBS / seconds, 3),
    }
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")


def test_48_jobs_on_4_workers_into_a_fresh_sqlite_store(tmp_path, fresh_store):
    seconds = load_sweep(tmp_path, fresh_store, "load")
    assert_nothing_lost(fresh_store, "load")
    record("sqlite", seconds)


def test_48_jobs_on_4_workers_through_nnexp_server(tmp_path, shared_server):
    uri, folder = shared_server
    seconds = load_sweep(tmp_path, uri, "load")
    assert_nothing_lost(uri, "load")
    assert (folder / "mlflow.db").is_file() and not (tmp_path / "mlflow.db").exists()
    record("server", seconds)
