"""Nothing a test starts outlives it: a server started through ``tethered.start`` (as every server
of the suite is) stops with the test process, by any signal, SIGKILL included, and with it what
the server daemonised. The server here is ``python -m http.server`` that first starts a process
in a session of its own (as ``pg_ctl`` or SLURM's ``slurmstepd`` do)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

import tethered
from conftest import free_port, stop_group, wait_for

TESTS = Path(__file__).resolve().parent

#: An HTTP server on argv[1] that first starts a sleeper in its own session and writes its pid
#: to argv[2].
SERVER = textwrap.dedent("""
    import subprocess, sys
    from pathlib import Path
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    Path(sys.argv[2]).write_text(str(sleeper.pid))
    sys.argv[1:] = [sys.argv[1], "--bind", "127.0.0.1"]
    import runpy
    runpy.run_module("http.server", run_name="__main__")
""")


def server_argv(port: int, sleeper_file: Path) -> list[str]:
    return [sys.executable, "-c", SERVER, str(port), str(sleeper_file)]


def start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat), None once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def gone(pids: dict[int, str | None]) -> bool:
    """Whether none of ``pids`` (pid → start time) still runs."""
    return all(start_time(pid) != started for pid, started in pids.items())


def kill_left(pids: dict[int, str | None]) -> None:
    """SIGKILL whatever of ``pids`` still runs: a failing test leaves nothing behind either."""
    for pid, started in pids.items():
        if started is not None and start_time(pid) == started:
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_server_ends_with_the_pytest_session_that_started_it(tmp_path: Path, sig: int):
    port, sleeper_file, pids_file = free_port(), tmp_path / "sleeper.pid", tmp_path / "pids"
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_holds_a_server.py").write_text(
        textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(TESTS)!r})
        import tethered

        def test_holds_a_server(tmp_path):
            server = tethered.start({server_argv(port, sleeper_file)!r}, log=tmp_path / "log")
            Path({str(pids_file)!r}).write_text(f"{{server.guard.pid}} {{server.pid}}")
            time.sleep(600)
        """)
    )
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tmp_path],
        cwd=tmp_path,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pids: dict[int, str | None] = {}
    try:
        wait_for(lambda: sleeper_file.exists() and pids_file.exists() and answers(port), 120)
        guard, server = map(int, pids_file.read_text().split())
        sleeper = int(sleeper_file.read_text())
        pids = {pid: start_time(pid) for pid in (guard, server, sleeper)}
        assert None not in pids.values(), pids
        session.send_signal(sig)
        assert session.wait(timeout=60) == -sig
        wait_for(lambda: gone(pids), timeout=60, every=0.1)
        assert not answers(port)
    finally:
        if session.poll() is None:
            os.killpg(session.pid, signal.SIGKILL)
            session.wait()
        kill_left(pids)


def test_stopping_a_server_stops_what_it_left_behind(tmp_path: Path):
    port, sleeper_file = free_port(), tmp_path / "sleeper.pid"
    server = tethered.start(server_argv(port, sleeper_file), log=tmp_path / "log")
    pids: dict[int, str | None] = {}
    try:
        wait_for(lambda: sleeper_file.exists() and answers(port), timeout=120)
        sleeper = int(sleeper_file.read_text())
        pids = {pid: start_time(pid) for pid in (server.pid, sleeper)}
        stop_group(server)
        assert server.returncode == -signal.SIGTERM  # the server's own status, as with Popen
        assert gone(pids)
    finally:
        stop_group(server)
        kill_left(pids)


def test_a_server_that_cannot_start_is_an_error_naming_it(tmp_path: Path):
    missing = str(tmp_path / "no-such-server")
    with pytest.raises(OSError, match="no-such-server did not start"):
        tethered.start([missing], log=tmp_path / "log")


#: A server that daemonises three workers (double fork) which end at once, then waits.
ORPHANING = textwrap.dedent("""
    import os, time
    for _ in range(3):
        if os.fork() == 0:
            if os.fork() == 0:
                os._exit(0)
            os._exit(0)
        os.wait()
    print("orphaned", flush=True)
    time.sleep(600)
""")


def children_of(pid: int) -> dict[int, str]:
    """pid → state of every child of ``pid``."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue
        if int(ppid) == pid:
            found[int(stat.parent.name)] = state
    return found


def test_the_guard_collects_the_workers_a_server_orphans(tmp_path: Path):
    """Orphans come to the guard (a subreaper), which collects them as they end: no zombies pile
    up under a long-running daemon (slurmd's job steps, Ray's workers)."""
    log = tmp_path / "log"
    server = tethered.start([sys.executable, "-c", ORPHANING], log=log)
    try:
        wait_for(lambda: "orphaned" in log.read_text(), timeout=120)
        wait_for(lambda: children_of(server.guard.pid).keys() == {server.pid}, timeout=30)
        assert children_of(server.guard.pid)[server.pid] != "Z"
    finally:
        stop_group(server)
