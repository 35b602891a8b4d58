"""Sweeps on a real single-node SLURM cluster with accounting (``hydra/launcher=slurm``): a group
of same-shape jobs as one task of the job array, its children equal to each config run as its
own task; tasks and jobs the cluster loses (cancelled, timed out) as failed children with
SLURM's reason, the sweep's table still written, and resume completing the sweep."""

from __future__ import annotations

import contextlib
import csv
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from clusters.grid import CONFIGS, GRID, PER_SHAPE, by_config, curves, weights
from clusters.slurm_cluster import SlurmCluster, slurm  # noqa: F401 (the session fixture)
from conftest import (
    BIN,
    clean_env,
    metric_steps,
    run_app,
    sweep_runs,
    wait_for,
)

#: One pytest-xdist worker for the module, so that the cluster (its module fixture) starts once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]

AXIS = "model.hidden=2,3,4"
JOB = ["optim.epochs=200", "tracking.log_model=false"]


def slurm_sweep(cluster: SlurmCluster, folder: Path, name: str, *args: str) -> list[str]:
    """The command line of a 3-job sweep on the cluster, into ``folder``'s store; each job
    is short (JOB)."""
    return [
        str(BIN / "nnexp-train"),
        "-m",
        "hydra/launcher=slurm",
        f"hydra.sweep.dir={folder / name}",
        f"tracking.uri=sqlite:///{folder}/mlflow.db",
        *JOB,
        AXIS,
        *args,
    ]


def run(cluster: SlurmCluster, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The launching command to its end, in-process (``run_app``): its tasks are SLURM's."""
    return run_app(argv[0].rsplit("/", 1)[-1], *argv[1:], cwd=cwd, env=cluster_env(cluster))


def cluster_env(cluster: SlurmCluster) -> dict[str, str]:
    return clean_env(SLURM_CONF=str(cluster.conf))


def test_jobs_lost_by_slurm_become_failed_children_and_resume_completes(slurm, tmp_path, store):  # noqa: F811
    """Jobs 0 and 1 wait in their setup line (RUNNING for SLURM, no run opened): job 0 is
    cancelled, job 1's end time is moved to now so SLURM ends it TIMEOUT; job 2 trains to its
    end. The resumed sweep then runs jobs 0 and 1 through sbatch to FINISHED children, and
    never submits job 2, already FINISHED."""
    gate = tmp_path / "gate"
    (tmp_path / "gate_2").touch()
    first = [
        "hydra.launcher.batch=false",
        f"hydra.launcher.setup=['until test -e {gate}_$SLURM_ARRAY_TASK_ID; do sleep 0.2; done']",
    ]
    process = subprocess.Popen(
        slurm_sweep(slurm, tmp_path, "first", *first),
        cwd=tmp_path,
        env=cluster_env(slurm),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        slurm.run("scancel", wait_for(lambda: running_task(slurm, "0"), timeout=300, every=0.5))
        timed_out = wait_for(lambda: running_task(slurm, "1"), timeout=300, every=0.5)
        wait_for(lambda: end_now(slurm, timed_out), timeout=60, every=0.5)
        out, err = process.communicate(timeout=900)
    finally:
        process.kill()
    assert process.returncode == 1, out + err
    assert "Traceback" not in out + err
    lost = [line for line in err.splitlines() if " lost: " in line]
    assert len(lost) == 2, err
    assert lost[0].startswith("error: job 0 (") and "ended CANCELLED" in lost[0]
    assert lost[1].startswith("error: job 1 (") and "ended TIMEOUT" in lost[1]
    assert "1 killed" in out and "1 failed" in out and "1 finished" in out
    with (tmp_path / "first" / "sweep_summary.csv").open() as handle:
        rows = {row["model.hidden"]: row for row in csv.DictReader(handle)}
    assert rows["2"]["status"] == "killed" and "CANCELLED" in rows["2"]["reason"]
    assert rows["3"]["status"] == "failed" and "TIMEOUT" in rows["3"]["reason"]
    assert rows["4"]["status"] == "finished"
    assert slurm.job_state(timed_out) == "TIMEOUT"
    parents, children = sweep_runs(store)
    assert parents[0].info.status == "FAILED"
    by_job = {c.data.tags["nnexp.job_num"]: c for c in children}
    assert by_job["0"].info.status == "KILLED"
    assert "CANCELLED" in by_job["0"].data.tags["nnexp.error"]
    assert by_job["1"].info.status == "FAILED"
    assert f"SLURM job {timed_out} ended TIMEOUT" in by_job["1"].data.tags["nnexp.error"]
    assert by_job["2"].info.status == "FINISHED"
    assert metric_steps(store, by_job["2"].info.run_id, "train_cost")

    resumed = slurm_sweep(
        slurm, tmp_path, "resumed", "sweep.resume=true", "hydra.launcher.batch=false"
    )
    done = run(slurm, resumed, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    parents, children = sweep_runs(store)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["children_killed"] == 0
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert sorted(c.data.params["model.hidden"] for c in finished) == ["2", "3", "4"]
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in finished)
    assert "skipped job 2 (" in done.stdout
    submitted = (tmp_path / "resumed" / ".submitit").glob("*/*_submitted.pkl")
    assert len({path.parent.name for path in submitted}) == 2
    assert not (tmp_path / "resumed" / "2").exists()


def end_now(cluster: SlurmCluster, job: str) -> bool:
    """Move the running job's end time to now (as root), so slurmctld's next time-limit check
    (every 30 s) ends it TIMEOUT; False when slurmctld's clock had already passed the second
    scontrol sent ("Invalid time specified"), to be asked again."""
    done = cluster.run("scontrol", "update", f"JobId={job}", "EndTime=now", check=False)
    if done.returncode != 0 and "Invalid time" not in done.stderr:
        raise AssertionError(f"scontrol update JobId={job} EndTime=now: {done.stderr.strip()}")
    return done.returncode == 0


def running_task(cluster: SlurmCluster, index: str) -> str | None:
    """The id (``ARRAY_INDEX``) of the array task ``index`` once SLURM runs it."""
    listed = cluster.run("squeue", "-h", "-r", "-t", "RUNNING", "-o", "%i").stdout.split()
    return next((job for job in listed if job.endswith(f"_{index}")), None)


def grid_sweep(folder: Path, name: str, *args: str, store: str | None = None) -> list[str]:
    """The command line of the 8-config grid on the cluster, into the sweep folder ``name`` and
    the store ``store``.db (``name``.db) in ``folder``."""
    return [
        str(BIN / "nnexp-train"),
        "-m",
        "hydra/launcher=slurm",
        f"hydra.sweep.dir={folder / name}",
        f"tracking.uri=sqlite:///{folder}/{store or name}.db",
        "tracking.log_model=false",
        *GRID,
        *args,
    ]


def empty_stores(empty_store_file: Path, folder: Path, *names: str) -> None:
    """``name``.db in ``folder`` for each name: a copy of the empty store (its schema made)."""
    for name in names:
        shutil.copyfile(empty_store_file, folder / f"{name}.db")


def ended_states(cluster: SlurmCluster, jobs: set[str]) -> set[str] | None:
    """The states accounting records for ``jobs`` once each has ended (None while one has not: a
    task's result is written before its job ends)."""
    states = {cluster.job_state(job) for job in jobs}
    return None if states & {"", "PENDING", "RUNNING", "COMPLETING"} else states


def submitted_tasks(sweep_dir: Path) -> set[str]:
    """The SLURM job ids (ARRAY_TASK) submitit submitted for the sweep."""
    return {path.parent.name for path in (sweep_dir / ".submitit").glob("*/*_submitted.pkl")}


def test_a_group_is_one_task_and_its_children_equal_each_config_run_as_its_own_task(
    slurm,  # noqa: F811
    tmp_path,
    empty_store_file,
):
    """The grid as 2 tasks (one per shape) against the same grid as 8 tasks of one job each
    (``batch=false``: each config trained alone by Hydra's run_job on the node): every child
    FINISHED, with the same curves, bit for bit, and the same weights."""
    empty_stores(empty_store_file, tmp_path, "alone", "grouped")
    began = time.monotonic()
    alone = run(slurm, grid_sweep(tmp_path, "alone", "hydra.launcher.batch=false"), tmp_path)
    alone_s = time.monotonic() - began
    assert alone.returncode == 0, alone.stdout + alone.stderr
    began = time.monotonic()
    done = run(slurm, grid_sweep(tmp_path, "grouped"), tmp_path)
    grouped_s = time.monotonic() - began
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"{CONFIGS} configs: {alone_s:.1f} s as {CONFIGS} SLURM tasks, {grouped_s:.1f} s as 2")
    assert f"Submitting {CONFIGS} jobs as 2 SLURM tasks" in done.stderr + done.stdout
    tasks = submitted_tasks(tmp_path / "grouped")
    assert len(tasks) == 2 and len(submitted_tasks(tmp_path / "alone")) == CONFIGS
    assert wait_for(lambda: ended_states(slurm, tasks), timeout=60) == {"COMPLETED"}
    grouped, single = (
        by_config(f"sqlite:///{tmp_path}/grouped.db"),
        by_config(f"sqlite:///{tmp_path}/alone.db"),
    )
    assert len(grouped) == CONFIGS and grouped.keys() == single.keys()
    for config, child in grouped.items():
        assert child.info.status == "FINISHED", config
        assert child.data.tags["nnexp.config_hash"] == single[config].data.tags["nnexp.config_hash"]
        got = curves(f"sqlite:///{tmp_path}/grouped.db", child)
        assert got == curves(f"sqlite:///{tmp_path}/alone.db", single[config]), config
        assert len(got["train_cost"]) > 1
        mine, theirs = weights(child), weights(single[config])
        assert mine.keys() == theirs.keys()
        assert all(np.array_equal(mine[key], theirs[key]) for key in theirs), config


def test_a_lost_task_fails_its_group_alone_and_resume_resubmits_only_it(
    slurm,  # noqa: F811
    tmp_path,
    empty_store_file,
):
    """Task 0 (one shape's 4 configs) waits in its setup line and is cancelled; task 1 trains:
    4 KILLED children with SLURM's reason, 4 FINISHED. The resumed sweep submits one task of the
    4 lost configs, and every config ends FINISHED."""
    gate = tmp_path / "gate"
    (tmp_path / "gate_1").touch()
    empty_stores(empty_store_file, tmp_path, "sweep")
    setup = (
        f"hydra.launcher.setup=['until test -e {gate}_$SLURM_ARRAY_TASK_ID; do sleep 0.2; done']"
    )
    process = subprocess.Popen(
        grid_sweep(tmp_path, "sweep", setup),
        cwd=tmp_path,
        env=cluster_env(slurm),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        cancelled = wait_for(lambda: running_task(slurm, "0"), timeout=300, every=0.5)
        slurm.run("scancel", cancelled)
        out, err = process.communicate(timeout=900)
    finally:
        process.kill()
    assert process.returncode == 1, out + err
    assert "Traceback" not in out + err
    lost = [line for line in err.splitlines() if " lost: " in line]
    assert len(lost) == PER_SHAPE and all(
        f"SLURM job {cancelled} ended CANCELLED" in line for line in lost
    )
    store = f"sqlite:///{tmp_path}/sweep.db"
    children = by_config(store)
    killed = [c for c in children.values() if c.info.status == "KILLED"]
    finished = [c for c in children.values() if c.info.status == "FINISHED"]
    assert len(killed) == PER_SHAPE and len(finished) == PER_SHAPE
    assert len({c.data.params["model.hidden"] for c in killed}) == 1
    assert all("CANCELLED" in c.data.tags["nnexp.error"] for c in killed)
    assert all(f"{tmp_path}/sweep/" in c.data.tags["nnexp.output_dir"] for c in killed)
    assert all(metric_steps(store, c.info.run_id, "train_cost") for c in finished)

    resumed = grid_sweep(tmp_path, "resumed", "sweep.resume=true", store="sweep")
    done = run(slurm, resumed, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Submitting {PER_SHAPE} jobs as 1 SLURM tasks" in done.stderr + done.stdout
    assert len(submitted_tasks(tmp_path / "resumed")) == 1
    parents, children = sweep_runs(store)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["children_skipped"] == PER_SHAPE
    keys = ("model.hidden", "optim.lr", "seed")
    again = [c for c in children if "/resumed/" in c.data.tags["nnexp.output_dir"]]
    assert sorted(tuple(c.data.params[k] for k in keys) for c in again) == sorted(
        tuple(c.data.params[k] for k in keys) for c in killed
    )
    assert all(c.info.status == "FINISHED" for c in again)


RUNNING_CHILD_WITH_POINTS = """
SELECT count(DISTINCT r.run_uuid) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid
JOIN metrics m ON m.run_uuid = r.run_uuid AND m.key = 'train_cost'
WHERE r.status = 'RUNNING' AND t.key = 'mlflow.parentRunId'
"""


def running_children_with_points(db: Path) -> int:
    """How many child runs in the SQLite file ``db`` are RUNNING with costs logged (read-only)."""
    try:
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        with contextlib.closing(reader):
            return reader.execute(RUNNING_CHILD_WITH_POINTS).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_a_stop_signal_to_the_launcher_cancels_its_tasks(slurm, tmp_path, store):  # noqa: F811
    """SIGTERM to the launching process while its one task (one group: a plain SLURM job, not an
    array) trains, its children open and streaming points: the task is cancelled, its children
    end KILLED with their points, the parent KILLED, and no run is left RUNNING."""
    process = subprocess.Popen(
        [
            str(BIN / "nnexp-train"),
            "-m",
            "hydra/launcher=slurm",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"tracking.uri={store}",
            "tracking.log_model=false",
            "tracking.live_after=0",
            "tracking.log_every=100",
            "optim.epochs=3000000",
            "optim.lr=0.5,1",
        ],
        cwd=tmp_path,
        env=cluster_env(slurm),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: running_children_with_points(tmp_path / "mlflow.db") == 2, timeout=300)
        (task,) = slurm.run("squeue", "-h", "-t", "RUNNING", "-o", "%i").stdout.split()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode != 0, out + err
    assert "Traceback" not in out + err
    wait_for(lambda: slurm.job_state(task) == "CANCELLED", timeout=60)

    def ended() -> list:
        parents, children = sweep_runs(store)
        statuses = {run.info.status for run in parents + children}
        return children if len(children) == 2 and "RUNNING" not in statuses else []

    children = wait_for(ended, timeout=60)
    parents, _ = sweep_runs(store)
    assert parents[0].info.status == "KILLED"
    assert all(child.info.status == "KILLED" for child in children)
    assert all(metric_steps(store, c.info.run_id, "train_cost") for c in children)
