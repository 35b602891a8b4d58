"""Sweeps end to end: a parent run with its jobs as child runs, for the local launchers, Optuna,
failure isolation, SIGTERM, resume, and a tracking server; real command lines, real stores."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import (
    BIN,
    FAULT_EPOCHS,
    FAULT_EVERY,
    FAULT_JOB,
    clean_env,
    frozen_mid_job,
    metric_steps,
    mlflow_client,
    run_app,
    run_cli,
    sweep_runs,
)

pytestmark = pytest.mark.slow

GRID = ["model.hidden=2,4", "optim.lr=0.5,1"]
EPOCHS = 20


def sweep(tmp_path: Path, uri: str, *args: str, timeout: float = 900, env=None, run=run_app):
    """``nnexp-train -m`` of ``args`` into ``uri``: in-process (``run_app``) unless ``run`` is
    ``run_cli`` (a launcher whose workers would outlive the command in the test process)."""
    return run(
        "nnexp-train",
        "-m",
        f"tracking.uri={uri}",
        f"optim.epochs={EPOCHS}",
        "tracking.log_model=false",
        *args,
        cwd=tmp_path,
        timeout=timeout,
        env=env,
    )


def assert_grid_recorded(
    uri: str, done: subprocess.CompletedProcess, tmp_path: Path, experiment: str = "nnexp"
):
    """1 parent FINISHED with the axes, 4 FINISHED children with the right params, full
    histories, readable names, and the parent's summary."""
    assert done.returncode == 0, done.stdout + done.stderr
    parents, children = sweep_runs(uri, experiment)
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params == {"model.hidden": "2,4", "optim.lr": "0.5,1"}
    assert "model.hidden=2,4" in parent.data.tags["nnexp.command"]
    assert Path(parent.data.tags["nnexp.sweep_dir"]).is_dir()
    assert parent.data.tags["nnexp.git_commit"]
    assert (
        parent.data.metrics["children_finished"] == 4
        and parent.data.metrics["children_failed"] == 0
    )
    pairs = set()
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        hidden, lr = child.data.params["model.hidden"], child.data.params["optim.lr"]
        pairs.add((hidden, lr))
        assert child.info.run_name == f"hidden={hidden} lr={lr.removesuffix('.0')}"
        for key in ("train_cost", "test_cost"):
            assert metric_steps(uri, child.info.run_id, key) == list(range(EPOCHS + 1))
    assert pairs == {("2", "0.5"), ("2", "1.0"), ("4", "0.5"), ("4", "1.0")}
    best = min(children, key=lambda r: r.data.metrics["test_cost"])
    assert parent.data.tags["nnexp.best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_test_cost"] == pytest.approx(best.data.metrics["test_cost"])
    client = mlflow_client(uri)
    table = Path(client.download_artifacts(parent.info.run_id, "sweep_summary.csv", str(tmp_path)))
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"finished"}
    assert {r["run_id"] for r in rows} == {c.info.run_id for c in children}
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "test_cost_by_key.png" in names
    assert "best:" in done.stdout
    return parent, children


def test_basic_launcher(tmp_path, store):
    assert_grid_recorded(store, sweep(tmp_path, store, *GRID), tmp_path)


def test_joblib_launcher_caps_blas_threads(tmp_path, store):
    done = sweep(
        tmp_path, store, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *GRID, run=run_cli
    )
    _, children = assert_grid_recorded(store, done, tmp_path)
    assert {c.data.tags["nnexp.blas_threads"] for c in children} == {
        str(max(os.cpu_count() // 2, 1))
    }
    assert len({c.data.tags["nnexp.pid"] for c in children}) >= 2


def test_submitit_local_launcher(tmp_path, store):
    done = sweep(tmp_path, store, "hydra/launcher=submitit_local", *GRID)
    assert_grid_recorded(store, done, tmp_path)


def test_optuna_search_six_trials(tmp_path, store):
    done = sweep(tmp_path, store, "hydra/sweeper=optuna", "hydra.sweeper.n_trials=6")
    assert done.returncode == 0, done.stderr
    parents, children = sweep_runs(store)
    assert len(parents) == 1 and len(children) == 6
    assert set(parents[0].data.params) == {"optim.lr", "regularization.l2", "model.hidden"}
    assert all(c.info.status == "FINISHED" for c in children)
    lrs = {float(c.data.params["optim.lr"]) for c in children}
    assert len(lrs) == 6 and all(0.05 <= lr <= 20 for lr in lrs)
    best = min(children, key=lambda r: r.data.metrics["test_cost"])
    assert parents[0].data.tags["nnexp.best_run_id"] == best.info.run_id


def test_optuna_goes_on_after_a_diverged_trial(tmp_path, store):
    done = sweep(
        tmp_path,
        store,
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=3",
        "optim.lr=choice(0.5,1e308)",
        "cost.reduction=sum",
        "dataset=diabetes",
    )
    _, children = sweep_runs(store)
    assert len(children) == 3
    statuses = {c.data.params["optim.lr"]: c.info.status for c in children}
    assert "FAILED" in statuses.values()
    assert done.returncode == 1


def test_one_invalid_point_fails_alone(tmp_path, store):
    done = sweep(tmp_path, store, "model.hidden=2,0,4")
    assert done.returncode == 1
    parents, children = sweep_runs(store)
    by_hidden = {c.data.params["model.hidden"]: c for c in children}
    assert by_hidden["2"].info.status == by_hidden["4"].info.status == "FINISHED"
    assert by_hidden["0"].info.status == "FAILED"
    assert "model.hidden=0 must be ≥ 1" in by_hidden["0"].data.tags["nnexp.error"]
    assert parents[0].info.status == "FAILED" and parents[0].data.metrics["children_failed"] == 1
    assert "failed" in done.stdout and "model.hidden=0 must be ≥ 1" in done.stdout
    assert "Traceback" not in done.stderr


def test_a_diverging_job_is_marked_and_the_sweep_goes_on(tmp_path, store):
    done = sweep(tmp_path, store, "optim.lr=0.5,1e308,1", "cost.reduction=sum", "dataset=diabetes")
    assert done.returncode == 1
    _, children = sweep_runs(store)
    by_lr = {c.data.params["optim.lr"]: c for c in children}
    assert by_lr["1e+308"].info.status == "FAILED"
    assert by_lr["1e+308"].data.tags["nnexp.status"] == "diverged"
    assert by_lr["0.5"].info.status == by_lr["1.0"].info.status == "FINISHED"


FAULT_JOBS = [*FAULT_JOB, "model.hidden=48,49,50"]


def test_sigterm_kills_the_job_and_resume_completes_the_sweep(tmp_path, store):
    command = [
        str(BIN / "nnexp-train"),
        "-m",
        f"tracking.uri={store}",
        "tracking.log_model=false",
        *FAULT_JOBS,
    ]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        victim = frozen_mid_job(process, tmp_path / "mlflow.db", job_num="1")
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGCONT)
        _, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 143, err
    parents, children = sweep_runs(store)
    killed = next(c for c in children if c.info.run_id == victim)
    assert killed.info.status == "KILLED" and killed.data.tags["nnexp.status"] == "killed"
    steps = metric_steps(store, killed.info.run_id, "train_cost")
    assert steps and steps == list(range(0, steps[-1] + 1, FAULT_EVERY))
    assert parents[0].info.status == "KILLED"
    assert [c.info.status for c in children if c.data.tags["nnexp.job_num"] == "0"] == ["FINISHED"]

    done = run_app(
        "nnexp-train",
        "-m",
        f"tracking.uri={store}",
        "tracking.log_model=false",
        *FAULT_JOBS,
        "sweep.resume=true",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "skipped hidden=48" in done.stdout
    parents_after, children_after = sweep_runs(store)
    assert len(parents_after) == 1 and parents_after[0].info.run_id == parents[0].info.run_id
    assert parents_after[0].info.status == "FINISHED"
    finished = [c for c in children_after if c.info.status == "FINISHED"]
    assert sorted(c.data.params["model.hidden"] for c in finished) == ["48", "49", "50"]
    assert parents_after[0].data.metrics["children_skipped"] == 1
    assert parents_after[0].data.metrics["children_finished"] == 2
    for child in finished:
        assert metric_steps(store, child.info.run_id, "test_cost") == list(
            range(0, FAULT_EPOCHS + 1, FAULT_EVERY)
        )


def test_sweep_through_a_tracking_server(tmp_path, shared_server):
    """The basic launcher, in one process: parallel jobs through a server are
    reliability/test_load.py's (48 jobs on 4 joblib workers)."""
    uri, folder = shared_server
    experiment = "sweep_through_a_server"
    done = sweep(tmp_path, uri, f"tracking.experiment={experiment}", *GRID)
    assert_grid_recorded(uri, done, tmp_path, experiment)
    assert (folder / "mlflow.db").is_file() and not (tmp_path / "mlflow.db").exists()
