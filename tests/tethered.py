"""Servers tethered to the test process: whatever a test starts stops when that process ends, by
any signal, SIGKILL included.

``start(argv, log=…)`` runs this file as a guard process in a session of its own, and the guard
runs the server as its child, in a process group of its own (so ``os.killpg(server.pid, …)`` and
``stop_group`` signal the server and its workers, as before). The guard

- is a child subreaper (``PR_SET_CHILD_SUBREAPER``): whatever the server forks, daemonised
  (double fork, ``setsid``) or not, stays its descendant;
- reads the read end of a pipe whose write end only the test process holds: when that process
  ends, however, the pipe closes and the guard stops every descendant (the stop signal, SIGKILL
  after ``GRACE`` seconds);
- when the server ends, stops what it left behind the same way and exits with the server's
  status (``-N`` for signal N), so ``wait()`` and ``returncode`` read as the server's own.

The server also gets ``PR_SET_PDEATHSIG`` (SIGKILL when the guard dies) as a second line. Linux
only.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
#: Seconds the guard gives the processes it stops before SIGKILL (below stop_group's 20 s).
GRACE = 10.0
GUARD = Path(__file__).resolve()


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}, {value}) failed")


@functools.cache
def _lifeline_reader() -> int:
    """The read end of this process's lifeline pipe (made once); the write end stays open in this
    process only (not inherited by exec, closed in forked children) until it ends."""
    read, write = os.pipe()
    os.register_at_fork(after_in_child=lambda: os.close(write))
    return read


class Tethered:
    """A started server: ``pid`` is the server's (and its process group's) id; ``poll``, ``wait``
    and ``returncode`` are its exit status, as with ``subprocess.Popen``."""

    def __init__(self, guard: subprocess.Popen, pid: int):
        self.guard, self.pid = guard, pid

    @property
    def returncode(self) -> int | None:
        return self.guard.returncode

    def poll(self) -> int | None:
        return self.guard.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.guard.wait(timeout=timeout)


def start(
    argv: list[str],
    *,
    log: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
) -> Tethered:
    """Start ``argv`` as a server tethered to this process, its output appended to ``log``, as
    ``user`` when given (the caller being root); ``stop_signal`` is what the guard sends when this
    process ends. Raises OSError when ``argv`` cannot be started."""
    spec_read, spec_write = os.pipe()
    status_read, status_write = os.pipe()
    try:
        with log.open("a") as out:
            guard = subprocess.Popen(
                [sys.executable, "-I", "-S", str(GUARD), str(spec_read), str(status_write)],
                stdin=_lifeline_reader(),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                pass_fds=(spec_read, status_write),
                start_new_session=True,
            )
    finally:
        os.close(spec_read)
        os.close(status_write)
    # The server's command line reaches the guard through a pipe, not the guard's own command
    # line: a test that looks for the server's processes by their arguments finds the server only.
    spec = {"argv": argv, "user": user, "stop_signal": int(stop_signal)}
    with os.fdopen(spec_write, "w") as to_guard:
        to_guard.write(json.dumps(spec))
    with os.fdopen(status_read) as status:
        said = status.read()
    if not said.startswith("pid "):
        guard.wait()
        raise OSError(f"{argv[0]} did not start: {said.strip() or 'the guard exited'}")
    return Tethered(guard, int(said.split()[1]))


# --- the guard -------------------------------------------------------------------------------


def _descendants(root: int) -> list[int]:
    """Every live process below ``root`` (zombies left out)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
            if state != "Z":
                children.setdefault(int(ppid), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def _reap() -> None:
    """Collect the exit status of every ended child (orphans come to the subreaper)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass


def _reap_orphans(server: int) -> None:
    """Collect the ended processes that were orphaned to the guard while the server runs (a
    daemon's finished workers), leaving the server's own status for ``server.wait()``."""
    while True:
        try:
            ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if ended is None or ended.si_pid == server:
            return
        os.waitpid(ended.si_pid, 0)


def _stop_all(server: int, stop_signal: int) -> None:
    """``stop_signal`` to the server's group and once to every descendant, SIGKILL to those left
    after GRACE seconds; returns once none is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server, stop_signal)
    deadline, signalled = time.monotonic() + GRACE, set()
    while True:
        _reap()
        left = _descendants(os.getpid())
        if not left:
            return
        late = time.monotonic() > deadline
        for pid in left:
            if late or pid not in signalled:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL if late else stop_signal)
                signalled.add(pid)
        time.sleep(0.1)


def _exit_as(status: int) -> None:
    """End this process as the server ended: code ``status``, or by signal ``-status``."""
    if status < 0:
        with contextlib.suppress(OSError, ValueError):  # SIGKILL and SIGSTOP have no handler
            signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    sys.exit(status)


class _Stop(Exception):
    """The guard itself was told to stop (SIGTERM, SIGINT or SIGHUP)."""


def _stop(*_) -> None:
    raise _Stop


def _guard(argv: list[str], stop_signal: int, status_fd: int, user: str | None) -> None:
    _prctl(PR_SET_CHILD_SUBREAPER, 1)

    def tether() -> None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    try:  # the guard has one thread, so preexec_fn is safe here
        server = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            process_group=0,
            user=user,
            preexec_fn=tether,  # noqa: PLW1509
        )
    except (OSError, subprocess.SubprocessError) as err:
        os.write(status_fd, f"{err}\n".encode())
        sys.exit(1)
    os.write(status_fd, f"pid {server.pid}\n".encode())
    os.close(status_fd)

    ended, lifeline = os.pidfd_open(server.pid), sys.stdin.fileno()
    woken, wake = os.pipe()
    for end in (woken, wake):
        os.set_blocking(end, False)
    signal.set_wakeup_fd(wake)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below through ``woken``
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _stop)
    with contextlib.suppress(_Stop):
        while True:
            ready = select.select([ended, lifeline, woken], [], [])[0]
            if woken in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(woken, 512)
                _reap_orphans(server.pid)
            if ended in ready:
                break
            if lifeline in ready and not os.read(lifeline, 1):  # the test process has ended
                break
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if server.poll() is None:
        _stop_all(server.pid, stop_signal)
        _exit_as(server.wait())
    status = server.wait()
    _stop_all(server.pid, signal.SIGTERM)
    _exit_as(status)


def main() -> None:
    """``tethered.py SPEC_FD STATUS_FD``: the guard; the spec (``argv``, ``user``,
    ``stop_signal``) is JSON on SPEC_FD, the server's pid or the error goes to STATUS_FD."""
    spec_fd, status_fd = map(int, sys.argv[1:3])
    with os.fdopen(spec_fd) as spec_file:
        spec = json.load(spec_file)
    _guard(spec["argv"], spec["stop_signal"], status_fd, spec["user"])


if __name__ == "__main__":
    main()
