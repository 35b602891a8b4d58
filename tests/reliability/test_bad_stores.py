"""Stores that cannot be used: an unreachable or hung server, a missing or read-only folder, a
file that is not SQLite, and store commands pointed at what does not exist. One line each, a
non-zero exit, no traceback, and nothing created or changed. These run the real binaries: each of
``nnexp-train`` and ``nnexp runs|report|reproduce|diff`` has its exit status checked here as a
process's."""

from __future__ import annotations

import socket
import time

import pytest

from conftest import assert_one_line_error, free_port, mlflow_client, run_cli
from reliability.conftest import read_only

NOT_SQLITE = b"these are notes, not an SQLite database\n"


def train(tmp_path, uri: str):
    """A two-epoch run into ``uri``; 300 s detects a hang (MLflow's own retries last far longer)
    whatever the load, where the run takes seconds."""
    return run_cli(
        "nnexp-train", "optim.epochs=2", f"tracking.uri={uri}", cwd=tmp_path, timeout=300
    )


def test_a_server_nobody_runs_is_refused_at_once(tmp_path):
    done = train(tmp_path, f"http://127.0.0.1:{free_port()}")
    assert_one_line_error(done, "cannot reach the MLflow server", "nnexp server")
    assert not list(tmp_path.glob("outputs/*/*/weights.npz"))


@pytest.mark.slow
def test_a_server_that_never_answers_is_given_up_on_not_retried_for_minutes(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        done = train(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}")
        waited = time.monotonic() - started
    assert_one_line_error(done, "cannot reach the MLflow server", "timed out")
    print(f"gave up on a silent server after {waited:.1f} s")


def test_a_store_in_a_folder_that_does_not_exist(tmp_path):
    done = train(tmp_path, f"sqlite:///{tmp_path}/missing/mlflow.db")
    assert_one_line_error(done, "the folder", "does not exist", "create it")
    assert not (tmp_path / "missing").exists()


def test_a_store_in_a_read_only_folder(tmp_path):
    with read_only(tmp_path / "locked") as folder:
        done = train(tmp_path, f"sqlite:///{folder}/mlflow.db")
        assert_one_line_error(done, "cannot write in", "Read-only file system")
        assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["nnexp-train", "optim.epochs=2", "tracking.uri={uri}"],
        ["nnexp", "runs", "repair", "--tracking-uri={uri}"],
        ["nnexp", "report", "nnexp", "--tracking-uri={uri}"],
        ["nnexp", "reproduce", "0123456789abcdef0123456789abcdef", "--tracking-uri={uri}"],
        ["nnexp", "diff", "0123456789abcdef", "fedcba9876543210", "--tracking-uri={uri}"],
    ],
    ids=["train", "repair", "report", "reproduce", "diff"],
)
def test_a_file_that_is_not_sqlite_is_refused_and_never_overwritten(tmp_path, command):
    database = tmp_path / "mlflow.db"
    database.write_bytes(NOT_SQLITE)
    uri = f"sqlite:///{database}"
    done = run_cli(*[part.format(uri=uri) for part in command], cwd=tmp_path)
    assert_one_line_error(done, "is not an SQLite database", "will not overwrite it")
    assert database.read_bytes() == NOT_SQLITE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


def test_repair_of_a_store_that_does_not_exist_creates_none(tmp_path):
    done = run_cli(
        "nnexp", "runs", "repair", f"--tracking-uri=sqlite:///{tmp_path}/none.db", cwd=tmp_path
    )
    assert_one_line_error(done, "no MLflow store at", "--tracking-uri")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_repair_of_an_unknown_experiment_names_the_ones_there(tmp_path, store):
    mlflow_client(store).create_experiment("nnexp")
    done = run_cli(
        "nnexp", "runs", "repair", f"--tracking-uri={store}", "--experiment=nope", cwd=tmp_path
    )
    assert_one_line_error(done, "no MLflow experiment named 'nope'", "nnexp")
