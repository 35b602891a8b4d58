"""Shared helpers: run the real console scripts in a subprocess, read the real MLflow store."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


#: A job of ~15 s of training on 2 cores (metrics flushed every 2 s): long enough to be
#: interrupted mid-run by the fault tests.
LONG_EPOCHS, LONG_EVERY = 24000, 100
LONG_JOB = [
    "dataset=synthetic",
    "dataset.n=20000",
    "dataset.d=20",
    f"optim.epochs={LONG_EPOCHS}",
    f"tracking.log_every={LONG_EVERY}",
    "tracking.log_model=false",
]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user who set nothing nnexp- or MLflow-specific."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}
    env.update(extra)
    return env


def run_cli(
    command: str, *args: str, cwd: Path, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """``command args…`` from the project's venv, as a user would type it."""
    return subprocess.run(
        [str(BIN / command), *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    """The lines of stderr that carry text."""
    return [line for line in done.stderr.splitlines() if line.strip()]


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str, code: int = 2) -> str:
    """Exit ``code``, no traceback, exactly one stderr line, naming every fragment."""
    lines = error_lines(done)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh SQLite tracking URI in the test's folder."""
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture
def train(tmp_path: Path, store: str):
    """``nnexp-train`` into the test's store, run from the test's folder."""

    def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return run_cli("nnexp-train", f"tracking.uri={store}", *args, cwd=tmp_path, **kwargs)

    return run


@functools.cache
def mlflow_client(uri: str):
    """A client of the store, opened the way nnexp opens it (taking turns at creating it)."""
    from nnexp.tracking.store import client_for

    return client_for(uri)


def all_runs(uri: str, experiment: str = "nnexp"):
    """Every run of the experiment (none if the store or experiment does not exist)."""
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
        return []
    client = mlflow_client(uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], max_results=5000) if found else []


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sweep_runs(uri: str, experiment: str = "nnexp"):
    """(parents, children) of the experiment: sweep parents and the runs nested under them."""
    runs = all_runs(uri, experiment)
    parents = [r for r in runs if r.data.tags.get("nnexp.run_type") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def metric_steps(uri: str, run_id: str, key: str) -> list[int]:
    """The steps at which ``key`` was logged, in order."""
    return sorted(m.step for m in mlflow_client(uri).get_metric_history(run_id, key))


def running_with_metrics(uri: str, job_num: str | None = None):
    """A RUNNING run (of sweep job ``job_num``) that has logged metric points already."""

    def find():
        for run in all_runs(uri):
            if run.info.status != "RUNNING" or not run.data.metrics:
                continue
            if job_num is None or run.data.tags.get("nnexp.job_num") == job_num:
                return run
        return None

    return find


def wait_for(predicate, timeout: float = 120.0, every: float = 0.2):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"condition not reached within {timeout} s")


def status(
    url: str, user: str | None = None, password: str | None = None, timeout: float = 10.0
) -> int:
    """The HTTP status of a GET, with basic-auth credentials when given."""
    import base64
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def healthy(uri: str) -> bool:
    """Whether an MLflow server answers its health check."""
    try:
        return status(f"{uri}/health", timeout=2) == 200
    except OSError:
        return False


class ServerProcess:
    """`nnexp server` in its own process group, in ``folder``, on a fixed loopback port."""

    def __init__(self, folder: Path, port: int, *args: str, env: dict | None = None):
        self.folder, self.port, self.args, self.env = folder, port, args, env
        self.uri = f"http://127.0.0.1:{port}"
        self.log = folder / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        """Start the server, its output to server.log in its folder (a pipe nobody reads would
        fill up with access-log lines and stall the server)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [str(BIN / "nnexp"), "server", "--port", str(self.port), *self.args],
                cwd=self.folder,
                env=self.env or clean_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        wait_for(lambda: healthy(self.uri) or self.process.poll() is not None, timeout=90)
        assert self.process.poll() is None, self.log.read_text()
        return self

    def stop(self) -> None:
        """Stop the whole process group (mlflow server spawns workers and job runners)."""
        stop_group(self.process)


def stop_group(process: subprocess.Popen | None, timeout: float = 20) -> None:
    """SIGTERM to the process group led by ``process`` (started with start_new_session=True);
    SIGKILL if it has not ended within ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


@pytest.fixture
def tracking_server(tmp_path):
    """(uri, folder) of `nnexp server` on a free loopback port, stopped after the test."""
    server = ServerProcess(tmp_path / "server", free_port()).start()
    try:
        yield server.uri, server.folder
    finally:
        server.stop()
