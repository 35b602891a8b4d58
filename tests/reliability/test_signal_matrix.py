"""A stop signal (Ctrl-C, SIGTERM, SIGHUP) ends a sweep, whatever launcher runs its jobs and
whether it reaches the whole process group (a terminal's Ctrl-C, ``timeout``, a closed terminal)
or only the launching process (``kill PID``): the parent ends KILLED, no child stays RUNNING, and
no job starts after the signal. The sweep runs in a session of its own, so its process group is
exactly the sweep's processes; it is frozen (SIGSTOP to the group) while a job trains, signalled,
then let go, so the signal lands mid-job however loaded the machine."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, FAULT_JOB, clean_env, mid_job, mlflow_client, sweep_runs

pytestmark = pytest.mark.slow

#: Launchers that run a sweep's jobs on this machine, with the overrides that choose them; two
#: workers for the ones that run jobs side by side.
LAUNCHERS = {
    "nnexp": [],
    "basic": ["hydra/launcher=basic"],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
AXIS = "model.hidden=48,49,50,51,52"


def start_sweep(
    tmp_path: Path,
    store: str,
    launcher: str,
    wrapper: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """The sweep (under ``wrapper``, in ``env``) in a new session (its own process group), SIGINT
    at its default action as in a terminal (a test run in the background inherits it ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [*wrapper, str(BIN / "nnexp-train"), "-m", f"tracking.uri={store}", *FAULT_JOB, AXIS]
            + LAUNCHERS[launcher],
            cwd=tmp_path,
            env=env if env is not None else clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def freeze_mid_job(process: subprocess.Popen, db: Path) -> str:
    """Stop the sweep's whole group while a child trains (costs logged, far from its end);
    return that child's run id."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sweep ended before a job was seen mid-training"
        if mid_job(db) is None:
            time.sleep(0.05)
            continue
        os.killpg(process.pid, signal.SIGSTOP)
        run_id = mid_job(db, wait=10)
        if run_id is not None:
            return run_id
        os.killpg(process.pid, signal.SIGCONT)
    raise AssertionError("no job seen mid-training within 600 s")


@pytest.mark.parametrize("target", ["group", "leader"])
@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_a_stop_signal_ends_the_sweep_and_every_child(tmp_path, store, launcher, signum, target):
    process = start_sweep(tmp_path, store, launcher)
    stop_and_check(process, store, tmp_path, signum, group=target == "group")


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_timeout_ends_the_sweep_and_every_child(tmp_path, store, launcher):
    """``timeout`` sends its signal to the sweep's launching process, then again to the whole
    group: the second one must not cut the first one's clean-up short, and it reaches every
    process in the group, short-lived helpers too. joblib (loky) without psutil ran ``pgrep`` to
    find its workers' children as it ended them; killed by that second signal, the worker was
    never ended and the sweep hung at exit. Here every ``pgrep`` dies by SIGTERM, so that race
    is lost every time rather than now and then."""
    helpers = tmp_path / "bin"
    helpers.mkdir()
    pgrep = helpers / "pgrep"
    pgrep.write_text("#!/bin/sh\nkill -TERM $$\n")
    pgrep.chmod(0o755)
    env = clean_env(PATH=f"{helpers}{os.pathsep}{os.environ['PATH']}")
    process = start_sweep(tmp_path, store, launcher, wrapper=("timeout", "3600"), env=env)
    stop_and_check(process, store, tmp_path, signal.SIGTERM, group=False)


def stop_and_check(
    process: subprocess.Popen, store: str, tmp_path: Path, signum: int, group: bool
) -> None:
    """Signal the sweep mid-job (its group, or its first process alone) and check its end."""
    try:
        training = freeze_mid_job(process, tmp_path / "mlflow.db")
        signalled_ms = int(time.time() * 1000)
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        os.killpg(process.pid, signal.SIGCONT)
        _, err = process.communicate(timeout=300)  # a hang detector; it takes seconds
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 128 + signum, err
    assert "Traceback" not in err
    parents, children = sweep_runs(store)
    assert [p.info.status for p in parents] == ["KILLED"]
    statuses = {c.info.run_id: c.info.status for c in children}
    assert "RUNNING" not in statuses.values(), statuses
    assert statuses[training] == "KILLED"
    late = [c.info.run_id for c in children if c.info.start_time > signalled_ms]
    assert late == [], "a job started after the signal"
    assert mlflow_client(store).get_run(training).data.tags["nnexp.status"] == "killed"
