"""A store that already holds one finished run, to show bad input leaves it exactly as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import all_runs, run_cli


@pytest.fixture(scope="module")
def used_store(tmp_path_factory) -> tuple[Path, str]:
    """(folder, uri) of an SQLite store with one FINISHED run."""
    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder}/mlflow.db"
    done = run_cli(
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
