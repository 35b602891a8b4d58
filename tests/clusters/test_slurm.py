"""Sweeps on a real single-node SLURM cluster with accounting (``hydra/launcher=slurm``): jobs
as child runs, and jobs the cluster loses (cancelled, timed out) as failed children with SLURM's
reason, the sweep's table still written, and resume completing the sweep."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from clusters.slurm_cluster import SlurmCluster, slurm  # noqa: F401 (the session fixture)
from conftest import BIN, clean_env, run_cli, sweep_runs, wait_for

pytestmark = pytest.mark.slow

AXIS = "model.hidden=2,3"


def slurm_sweep(cluster: SlurmCluster, folder: Path, name: str, *args: str) -> list[str]:
    """The command line of a 2-job sweep on the cluster, into ``folder``'s store."""
    return [
        str(BIN / "nnexp-train"),
        "-m",
        "hydra/launcher=slurm",
        f"hydra.sweep.dir={folder / name}",
        f"tracking.uri=sqlite:///{folder}/mlflow.db",
        "optim.epochs=20",
        "tracking.log_model=false",
        AXIS,
        *args,
    ]


def run(cluster: SlurmCluster, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_cli(argv[0].rsplit("/", 1)[-1], *argv[1:], cwd=cwd, env=cluster_env(cluster))


def cluster_env(cluster: SlurmCluster) -> dict[str, str]:
    return clean_env(SLURM_CONF=str(cluster.conf))


def test_jobs_lost_by_slurm_become_failed_children_and_resume_completes(slurm, tmp_path):  # noqa: F811
    """Both jobs wait in their setup line (RUNNING for SLURM, no run opened yet): job 0 is
    cancelled once SLURM runs it, job 1 reaches its 1-minute time limit. The resumed sweep then
    runs both through sbatch to FINISHED children."""
    gate = tmp_path / "never"
    held = [
        f"hydra.launcher.setup=['until test -e {gate}; do sleep 0.2; done']",
        "hydra.launcher.timeout_min=1",
    ]
    process = subprocess.Popen(
        slurm_sweep(slurm, tmp_path, "first", *held),
        cwd=tmp_path,
        env=cluster_env(slurm),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        job = wait_for(lambda: running_task(slurm, "0"), timeout=300, every=0.5)
        slurm.run("scancel", job)
        out, err = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == 1, out + err
    assert "Traceback" not in out + err
    lost = [line for line in err.splitlines() if " lost: " in line]
    assert len(lost) == 2, err
    assert lost[0].startswith("error: job 0 (") and "ended CANCELLED" in lost[0]
    assert lost[1].startswith("error: job 1 (") and "ended TIMEOUT" in lost[1]
    assert "hydra.launcher.timeout_min" in lost[1]
    assert "1 killed" in out and "1 failed" in out
    with (tmp_path / "first" / "sweep_summary.csv").open() as handle:
        rows = {row["model.hidden"]: row for row in csv.DictReader(handle)}
    assert rows["2"]["status"] == "killed" and "CANCELLED" in rows["2"]["reason"]
    assert rows["3"]["status"] == "failed" and "TIMEOUT" in rows["3"]["reason"]
    store = f"sqlite:///{tmp_path}/mlflow.db"
    parents, children = sweep_runs(store)
    assert parents[0].info.status == "FAILED"
    by_job = {c.data.tags["nnexp.job_num"]: c for c in children}
    assert by_job["0"].info.status == "KILLED"
    assert by_job["1"].info.status == "FAILED"
    assert "TIMEOUT" in by_job["1"].data.tags["nnexp.error"]

    done = run(slurm, slurm_sweep(slurm, tmp_path, "resumed", "sweep.resume=true"), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    parents, children = sweep_runs(store)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["children_finished"] == 2
    assert parents[0].data.metrics["children_killed"] == 0
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert sorted(c.data.params["model.hidden"] for c in finished) == ["2", "3"]
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in finished)
    assert list((tmp_path / "resumed" / ".submitit").glob("*/*_submission.sh"))


def running_task(cluster: SlurmCluster, index: str) -> str | None:
    """The id (``ARRAY_INDEX``) of the array task ``index`` once SLURM runs it."""
    listed = cluster.run("squeue", "-h", "-r", "-t", "RUNNING", "-o", "%i").stdout.split()
    return next((job for job in listed if job.endswith(f"_{index}")), None)


def test_a_training_job_past_its_time_limit_ends_failed_with_the_reason(slurm, tmp_path):  # noqa: F811
    """A job training with no end in sight (1e9 epochs) under a 1-minute limit: SLURM ends it
    (its early warning ignored): one FAILED child, with SLURM's reason and what to raise."""
    argv = slurm_sweep(slurm, tmp_path, "limit", "hydra.launcher.timeout_min=1")
    argv[argv.index(AXIS)] = "model.hidden=2"
    argv[argv.index("optim.epochs=20")] = "optim.epochs=1000000000"
    done = run(slurm, [*argv, "tracking.log_every=1000"], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "1 failed" in done.stdout
    _, children = sweep_runs(f"sqlite:///{tmp_path}/mlflow.db")
    assert [c.info.status for c in children] == ["FAILED"]
    assert "ended TIMEOUT" in children[0].data.tags["nnexp.error"]
    assert "hydra.launcher.timeout_min" in children[0].data.tags["nnexp.error"]
