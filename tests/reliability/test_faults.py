"""Faults while a run or sweep is under way: signals, a killed process, a tracking server that
stops, a full or read-only artifact disk. Each ends in a clear state and a clear message."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import (
    BIN,
    FAULT_EPOCHS,
    FAULT_EVERY,
    FAULT_JOB,
    FAULT_MARGIN,
    MAX_METRICS,
    ServerProcess,
    all_runs,
    clean_env,
    error_lines,
    free_port,
    frozen_mid_job,
    metric_steps,
    mlflow_client,
    run_app,
    sweep_runs,
)
from reliability.conftest import read_only, tiny_disk

pytestmark = pytest.mark.slow

#: The sweeps' jobs also train to their end (those before the fault, and those resumed after
#: it): FAULT_JOB cut to the epochs that leave the freeze four batches of costs to catch a job
#: in (the first one stored up to FAULT_MARGIN before the job's end), FAULT_EPOCHS leaves eight.
SWEEP_EPOCHS = FAULT_MARGIN + 4 * (MAX_METRICS // 2) * FAULT_EVERY
SWEEP = [
    *(arg for arg in FAULT_JOB if not arg.startswith("optim.epochs=")),
    f"optim.epochs={SWEEP_EPOCHS}",
    "model.hidden=48,49,50",
]


def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    """``nnexp-train args`` in the background, with SIGINT's default action as a command typed
    in a terminal has. A test run in the background (`make test &`, many CI runners) inherits
    SIGINT ignored, and an ignored signal stays ignored across exec, where Python would keep it
    so; while this process handles SIGINT itself, the child starts with the default action."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [str(BIN / "nnexp-train"), *args],
            cwd=tmp_path,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def contiguous(steps: list[int]) -> bool:
    return bool(steps) and steps == list(range(0, steps[-1] + 1, FAULT_EVERY))


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGQUIT, 131)],
)
def test_signal_mid_run_ends_it_killed_with_its_metrics(tmp_path, store, signum, code):
    process = start(tmp_path, f"tracking.uri={store}", *FAULT_JOB)
    try:
        run_id = frozen_mid_job(process, tmp_path / "mlflow.db")
        process.send_signal(signum)
        process.send_signal(signal.SIGCONT)
        _, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == code, err
    assert "Traceback" not in err
    after = mlflow_client(store).get_run(run_id)
    assert after.info.status == "KILLED" and after.data.tags["nnexp.status"] == "killed"
    steps = metric_steps(store, run_id, "train_cost")
    assert contiguous(steps) and steps[-1] < FAULT_EPOCHS


def test_sigkill_leaves_running_runs_that_repair_kills_and_resume_completes(tmp_path, store):
    process = start(tmp_path, "-m", f"tracking.uri={store}", *SWEEP)
    try:
        victim = frozen_mid_job(process, tmp_path / "mlflow.db", job_num="1", epochs=SWEEP_EPOCHS)
    finally:
        process.kill()
        process.wait(timeout=60)
    parents, _ = sweep_runs(store)
    assert parents[0].info.status == "RUNNING"
    assert mlflow_client(store).get_run(victim).info.status == "RUNNING"

    repair = run_app("nnexp", "runs", "repair", f"--tracking-uri={store}", cwd=tmp_path)
    assert repair.returncode == 0, repair.stderr
    assert "2 run(s) repaired" in repair.stdout
    assert f"marked {victim}" in repair.stdout and "is gone" in repair.stdout
    client = mlflow_client(store)
    for run_id in (victim, parents[0].info.run_id):
        after = client.get_run(run_id)
        assert (
            after.info.status == "KILLED" and "nnexp runs repair" in after.data.tags["nnexp.error"]
        )
    again = run_app("nnexp", "runs", "repair", f"--tracking-uri={store}", cwd=tmp_path)
    assert "0 run(s) repaired" in again.stdout

    done = run_app(
        "nnexp-train", "-m", f"tracking.uri={store}", *SWEEP, "sweep.resume=true", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    parents, children = sweep_runs(store)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    finished = sorted(
        c.data.params["model.hidden"] for c in children if c.info.status == "FINISHED"
    )
    assert finished == ["48", "49", "50"]


@pytest.mark.parametrize(("chosen", "after"), [(None, "0"), ("1", "1")])
def test_a_refused_request_ends_the_retries_of_later_ones_unless_the_user_chose_them(
    monkeypatch, chosen, after
):
    """In-process against a port nobody listens on: the first request is retried (nnexp's
    default, 2), then refused; later requests of the process try once. A user's own setting
    stays."""
    from nnexp.errors import StoreFailed
    from nnexp.tracking.store import RETRIES, open_store, store_errors

    if chosen is None:
        monkeypatch.delenv(RETRIES, raising=False)
    else:
        monkeypatch.setenv(RETRIES, chosen)
    uri = f"http://127.0.0.1:{free_port()}"
    client = open_store(uri).client
    assert os.environ[RETRIES] == (chosen or "2")
    refused = pytest.raises(StoreFailed, match=r"stopped answering \(connection refused\)")
    with refused, store_errors(uri):
        client.get_run("0" * 32)
    assert os.environ[RETRIES] == after


def test_server_that_stops_mid_sweep_fails_jobs_clearly_and_resume_completes(
    tmp_path, empty_store_file
):
    # One worker: the jobs log one at a time, and each start imports MLflow once less. The
    # server's store starts as a copy of the migrated empty one: creating it is not the subject.
    (tmp_path / "server").mkdir()
    shutil.copyfile(empty_store_file, tmp_path / "server" / "mlflow.db")
    server = ServerProcess(tmp_path / "server", free_port(), "--workers", "1").start()
    uri = server.uri
    process = start(tmp_path, "-m", f"tracking.uri={uri}", *SWEEP)
    try:
        frozen_mid_job(process, server.folder / "mlflow.db", job_num="1", epochs=SWEEP_EPOCHS)
        server.stop()
        process.send_signal(signal.SIGCONT)
        out, err = process.communicate(timeout=600)  # a hang detector: no job may wait forever
        assert process.returncode == 1, out + err
        assert "Traceback" not in err
        assert "Warning" not in err, "a callback raised (Hydra warns) instead of saying why"
        assert "Retrying" not in out, "urllib3's retries are logged beside nnexp's one line"
        assert "stopped answering" in err or "cannot reach the MLflow server" in err
        failed_jobs = [line for line in err.splitlines() if ") failed: " in line]
        assert len(failed_jobs) == 2, err
        parent_left = err.splitlines()[-2]
        assert parent_left.startswith("error: could not end sweep parent"), err
        assert "`nnexp runs repair`" in parent_left

        server.start()
        done = run_app(
            "nnexp-train", "-m", f"tracking.uri={uri}", *SWEEP, "sweep.resume=true", cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "skipped hidden=48" in done.stdout
        parents, children = sweep_runs(uri)
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        finished = [c for c in children if c.info.status == "FINISHED"]
        assert sorted(c.data.params["model.hidden"] for c in finished) == ["48", "49", "50"]
        assert {c.info.status for c in children} <= {"FINISHED", "KILLED", "FAILED"}
        for child in children:
            steps = metric_steps(uri, child.info.run_id, "train_cost")
            assert len(steps) == len(set(steps)), "a point was logged twice"
        for child in finished:
            assert metric_steps(uri, child.info.run_id, "test_cost") == list(
                range(0, SWEEP_EPOCHS + 1, FAULT_EVERY)
            )
    finally:
        process.kill()
        server.stop()


def artifact_files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_full_artifact_disk_fails_the_run_clearly_and_damages_nothing(tmp_path, store):
    with tiny_disk(tmp_path / "mlruns", size_kb=160) as disk:
        first = run_app(
            "nnexp-train",
            f"tracking.uri={store}",
            "optim.epochs=5",
            "tracking.log_model=false",
            cwd=tmp_path,
        )
        assert first.returncode == 0, first.stderr
        before = artifact_files(disk)
        done = run_app(
            "nnexp-train",
            f"tracking.uri={store}",
            "optim.epochs=5",
            "dataset=digits",
            "model.hidden=64",
            cwd=tmp_path,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        lines = error_lines(done)
        assert len(lines) == 1 and "no space left" in lines[0].lower(), done.stderr
        assert "Traceback" not in done.stderr
        runs = {r.info.run_id: r for r in all_runs(store)}
        failed = [r for r in runs.values() if r.info.status == "FAILED"]
        assert len(failed) == 1 and "no space left" in failed[0].data.tags["nnexp.error"].lower()
        assert [r.info.status for r in runs.values()].count("FINISHED") == 1
        after = artifact_files(disk)
        assert all(after.get(name) == digest for name, digest in before.items())


def test_read_only_artifact_folder_fails_the_run_clearly(tmp_path, store):
    (tmp_path / "mlruns").mkdir()
    with read_only(tmp_path / "mlruns"):
        done = run_app("nnexp-train", f"tracking.uri={store}", "optim.epochs=5", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = error_lines(done)
    assert len(lines) == 1 and "read-only file system" in lines[0].lower(), done.stderr
    (run,) = all_runs(store)
    assert run.info.status == "FAILED" and "read-only" in run.data.tags["nnexp.error"].lower()
