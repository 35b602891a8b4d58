"""A store that already holds one finished run, to show bad input leaves it exactly as it was;
and one `nnexp server --auth` shared by the tests that only log into it."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ServerProcess, all_runs, clean_env, free_port, run_app

#: The admin password of the shared `nnexp server --auth` (auth_server).
ADMIN_PASSWORD = "correct-horse-battery-staple"
#: The mark of every test that uses auth_server: under `--dist loadgroup` they share a worker,
#: so the server starts once.
ON_AUTH_SERVER = pytest.mark.xdist_group("auth_server")


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One `nnexp server --auth --workers 1` (admin password ADMIN_PASSWORD) for the tests (of a
    pytest-xdist worker) that log into a server with a password but need no start of their own;
    stopped at the end of the session. Its output reaches server.log unbuffered, so a test reads
    there all it has printed so far."""
    env = clean_env(NNEXP_ADMIN_PASSWORD=ADMIN_PASSWORD, PYTHONUNBUFFERED="1")
    folder = tmp_path_factory.mktemp("auth-server")
    server = ServerProcess(folder, free_port(), "--auth", "--workers", "1", env=env).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def used_store(tmp_path_factory) -> tuple[Path, str]:
    """(folder, uri) of an SQLite store with one FINISHED run, built once per pytest-xdist worker:
    every test that uses it asserts that it leaves it exactly as it was."""
    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder}/mlflow.db"
    done = run_app(
        "nnexp-train",
        f"tracking.uri={uri}",
        "optim.epochs=3",
        "tracking.log_model=false",
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    return folder, uri


def snapshot(folder: Path, uri: str) -> tuple[str, list[tuple[str, str]], list[str]]:
    """The database's bytes (hashed), every run's status, and every artifact file."""
    digest = hashlib.sha256((folder / "mlflow.db").read_bytes()).hexdigest()
    runs = sorted((r.info.run_id, r.info.status) for r in all_runs(uri))
    artifacts = sorted(
        str(p.relative_to(folder)) for p in (folder / "mlruns").rglob("*") if p.is_file()
    )
    return digest, runs, artifacts


@contextmanager
def mounted(target: Path, *mount_args: str) -> Iterator[Path]:
    """``mount ... target`` for the block (these tests run as root, as CI does), then unmount."""
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", *mount_args, str(target)], check=True, capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` as a read-only bind mount of itself: even root cannot write there."""
    folder.mkdir(parents=True, exist_ok=True)
    with mounted(folder, "--bind", str(folder)):
        subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True
        )
        yield folder


@contextmanager
def tiny_disk(folder: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of ``size_kb`` KiB at ``folder``: writing more fails with ENOSPC."""
    with mounted(folder, "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs") as target:
        yield target
