"""Sweeps on a real single-node SLURM cluster with accounting (``hydra/launcher=slurm``): jobs
as child runs, and jobs the cluster loses (cancelled, timed out) as failed children with SLURM's
reason, the sweep's table still written, and resume completing the sweep."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from clusters.slurm_cluster import SlurmCluster, slurm  # noqa: F401 (the session fixture)
from conftest import (
    BIN,
    clean_env,
    metric_steps,
    run_cli,
    sweep_runs,
    wait_for,
)

pytestmark = pytest.mark.slow

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
    return run_cli(argv[0].rsplit("/", 1)[-1], *argv[1:], cwd=cwd, env=cluster_env(cluster))


def cluster_env(cluster: SlurmCluster) -> dict[str, str]:
    return clean_env(SLURM_CONF=str(cluster.conf))


def test_jobs_lost_by_slurm_become_failed_children_and_resume_completes(slurm, tmp_path):  # noqa: F811
    """Jobs 0 and 1 wait in their setup line (RUNNING for SLURM, no run opened): job 0 is
    cancelled, job 1's end time is moved to now so SLURM ends it TIMEOUT; job 2 trains to its
    end. The resumed sweep then runs jobs 0 and 1 through sbatch to FINISHED children, and
    never submits job 2, already FINISHED."""
    gate = tmp_path / "gate"
    (tmp_path / "gate_2").touch()
    first = [
        f"hydra.launcher.setup=['until test -e {gate}_$SLURM_ARRAY_TASK_ID; do sleep 0.2; done']",
    ]
    store = f"sqlite:///{tmp_path}/mlflow.db"
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

    done = run(slurm, slurm_sweep(slurm, tmp_path, "resumed", "sweep.resume=true"), tmp_path)
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
