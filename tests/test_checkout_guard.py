"""The checkout guard (tests/checkout_guard.py): a pytest session that leaves a new name at the
top of its root folder exits 1 and names it; one that writes only under tmp_path and into the
allowed caches passes. Each runs a real pytest session in a subprocess, its exit status the
subject."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import REPO, clean_env, run_cli

WRITES = """\
from pathlib import Path

def test_writes(tmp_path):
    (tmp_path / "mlflow.db").write_text("")
    Path(".hypothesis").mkdir(exist_ok=True)
    Path("test-artifacts").mkdir(exist_ok=True)
{extra}"""


def run_session(folder: Path, extra: str = "") -> subprocess.CompletedProcess:
    """A pytest session with the guard in ``folder``, its one test writing as told."""
    (folder / "test_writes.py").write_text(WRITES.format(extra=extra))
    guard = ["-p", "checkout_guard", "-p", "no:cacheprovider", "-p", "no:xdist", "-q"]
    env = clean_env(PYTHONPATH=str(REPO / "tests"))
    return run_cli("python", "-m", "pytest", *guard, "test_writes.py", cwd=folder, env=env)


def test_a_session_that_leaves_a_store_in_the_checkout_fails_naming_it(tmp_path):
    leaves = "    Path('mlflow.db').write_text('')\n    Path('mlruns').mkdir()\n"
    done = run_session(tmp_path, leaves)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert f"error: the session left mlflow.db, mlruns in {tmp_path}:" in done.stdout


def test_a_session_that_writes_under_tmp_path_and_into_caches_passes(tmp_path):
    (tmp_path / "outputs").mkdir()
    done = run_session(tmp_path, "    Path('outputs', 'run.log').write_text('')\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error:" not in done.stdout
