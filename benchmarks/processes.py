"""Whole commands as benchmark contenders: ``nnexp-train`` and the floor script, each run in a
fresh interpreter against its own SQLite store, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The repository root: the floor script is run from here as ``python -m benchmarks.floor``.
ROOT = Path(__file__).resolve().parents[1]


def environment() -> dict[str, str]:
    """The caller's environment without a tracking URI, so every command names its store."""
    return {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}


def run(command: Sequence[str], cwd: Path) -> str:
    """Run ``command`` in ``cwd``; its stderr, or RuntimeError with that stderr if it failed."""
    done = subprocess.run(
        list(command), cwd=cwd, env=environment(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return done.stderr


@dataclass(frozen=True)
class Measured:
    """A finished command: exit status, wall and CPU seconds (user + system, its children
    included), peak resident memory (MiB) and its stderr."""

    exit: int
    wall: float
    cpu: float
    peak_mib: float
    stderr: str


def measured(command: Sequence[str], cwd: Path) -> Measured:
    """Run ``command`` in ``cwd`` (stdout discarded, stderr kept in a file, so a long one cannot
    block it) and measure it as the operating system accounts for it (``wait4``)."""
    with tempfile.TemporaryFile() as err:
        start = time.monotonic()
        process = subprocess.Popen(
            list(command), cwd=cwd, env=environment(), stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return Measured(
        process.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stderr
    )


def store(folder: Path) -> str:
    """The absolute SQLite URI of ``folder``/mlflow.db."""
    return f"sqlite:///{folder / 'mlflow.db'}"


def harness(folder: Path, *overrides: str) -> Callable[[], str]:
    """One call: ``python -m nnexp`` (= nnexp-train) with ``overrides`` in ``folder``, tracked
    into ``folder``'s store unless the overrides turn tracking off."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "nnexp", *overrides, f"tracking.uri={store(folder)}"]
    return lambda: run(command, folder)


def floor(folder: Path, jobs: int, epochs: int) -> Callable[[], str]:
    """One call: the minimal MLflow client script logging ``jobs`` runs into ``folder``'s store."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "benchmarks.floor", store(folder), str(jobs), str(epochs)]
    return lambda: run(command, ROOT)


def import_seconds(folder: Path, *arguments: str) -> tuple[float, set[str]]:
    """``python -X importtime ARGUMENTS`` in ``folder``: the total import time (sum of the
    top-level imports' cumulative times) and the names of the top-level packages imported."""
    folder.mkdir(parents=True, exist_ok=True)
    stderr = run([sys.executable, "-X", "importtime", *arguments], folder)
    total, packages = 0, set()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        packages.add(name.strip().split(".")[0])
        if not name.startswith("  "):
            total += int(cumulative)
    return total / 1e6, packages
