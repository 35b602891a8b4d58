"""The SQLite store failing under a run that is training: its disk full, locked by another
process, its file deleted or its folder removed. Each is one line on stderr naming the cause and
the fix (none of MLflow's or SQLAlchemy's tracebacks), and the run ends FAILED when that can
still be written, or the line says to run `nnexp runs repair` when it cannot."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BIN, FAULT_JOB, clean_env, error_lines, frozen_mid_job, run_app
from reliability.conftest import tiny_disk

pytestmark = pytest.mark.slow

#: Seconds another process holds the database: longer than MLflow's 20 s SQLite busy timeout,
#: so the run's next write fails, and short enough that marking it FAILED then succeeds.
LOCK_SECONDS = 28
HOLD_LOCK = (
    "import sqlite3, sys, time\n"
    "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "db.execute('BEGIN EXCLUSIVE')\n"
    "print('locked', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
    "db.execute('ROLLBACK')\n"
)


def start(folder: Path, db: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "nnexp-train"), f"tracking.uri=sqlite:///{db}", *FAULT_JOB],
        cwd=folder,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def statuses(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as reader:
        return dict(reader.execute("SELECT run_uuid, status FROM runs").fetchall())


def fault_mid_run(tmp_path: Path, db: Path, fault) -> tuple[subprocess.CompletedProcess, str]:
    """Train into ``db``, stopped mid-run while ``fault(db)`` strikes, then let it go on."""
    process = start(tmp_path, db)
    try:
        run_id = frozen_mid_job(process, db)
        fault(db)
        process.send_signal(signal.SIGCONT)
        out, err = process.communicate(timeout=600)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), run_id


def assert_one_quiet_line(done: subprocess.CompletedProcess, *fragments: str) -> str:
    lines = error_lines(done)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and "sqlalchemy" not in done.stderr.lower()
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def fill(db: Path) -> None:
    """Write a file beside ``db`` until its disk is full."""
    with (db.parent / "filler").open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass


def test_a_full_database_disk_is_one_line_and_repair_ends_the_run_once_freed(
    tmp_path, empty_store_file
):
    size_kb = empty_store_file.stat().st_size // 1024 + 4096
    with tiny_disk(tmp_path / "db", size_kb=size_kb) as disk:
        db = disk / "mlflow.db"
        shutil.copyfile(empty_store_file, db)
        done, run_id = fault_mid_run(tmp_path, db, fill)
        line = assert_one_quiet_line(done, "no space left", "free space")
        assert f"run {run_id} stays RUNNING" in line and "`nnexp runs repair`" in line
        assert statuses(db)[run_id] == "RUNNING"
        (disk / "filler").unlink()
        repair = run_app("nnexp", "runs", "repair", f"--tracking-uri=sqlite:///{db}", cwd=tmp_path)
        assert repair.returncode == 0, repair.stderr
        assert statuses(db)[run_id] == "KILLED"


def test_a_database_locked_by_another_process_fails_the_run_in_one_line(tmp_path, store):
    holders = []

    def lock(db: Path) -> None:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(db), str(LOCK_SECONDS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(holder)
        assert holder.stdout.readline().strip() == "locked"

    db = tmp_path / "mlflow.db"
    try:
        done, run_id = fault_mid_run(tmp_path, db, lock)
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    assert_one_quiet_line(done, "locked by another process", "close it")
    assert statuses(db)[run_id] == "FAILED"


@pytest.mark.parametrize(
    ("remove", "cause"),
    [
        (lambda db: db.unlink(), "database file mlflow.db was deleted while in use"),
        (lambda db: shutil.rmtree(db.parent), "was removed while in use"),
    ],
    ids=["file deleted", "folder removed"],
)
def test_a_database_gone_mid_run_says_so_and_points_at_repair(tmp_path, store, remove, cause):
    db = tmp_path / "db" / "mlflow.db"
    db.parent.mkdir()
    shutil.move(tmp_path / "mlflow.db", db)
    done, run_id = fault_mid_run(tmp_path, db, remove)
    line = assert_one_quiet_line(done, cause, "restore it")
    assert f"run {run_id} stays RUNNING" in line and "`nnexp runs repair`" in line
