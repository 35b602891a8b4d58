"""Shared helpers: run the real console scripts (in-process, or in a subprocess where the process
is the subject), read the real MLflow store."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import in_process
import tethered
from tethered import Tethered

#: A session that leaves a new name at the top of the checkout fails (tests/checkout_guard.py).
pytest_plugins = ["checkout_guard"]

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


#: A fault-test job: the lecture's sleep_study, a few seconds of training whose costs reach the
#: store in batches of at most MAX_METRICS points (two per recorded epoch), so at most
#: FAULT_MARGIN epochs ahead of what the store shows. It is short when it finishes; the fault
#: tests stop it mid-training with frozen_mid_job, never by counting on its length. Recording
#: every epoch keeps eight batches between the first one stored and the margin (as 10000 epochs
#: recorded every 2 did) for half the training. ``tracking.live_after=0``: a sweep group on the
#: nnexp launcher opens its children at once and streams like a single run, however fast it trains.
FAULT_EPOCHS, FAULT_EVERY = 5000, 1
MAX_METRICS = 1000
FAULT_MARGIN = 2 * (MAX_METRICS // 2) * FAULT_EVERY
FAULT_JOB = [
    f"optim.epochs={FAULT_EPOCHS}",
    f"tracking.log_every={FAULT_EVERY}",
    "tracking.log_model=false",
    "tracking.live_after=0",
]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user who set nothing nnexp- or MLflow-specific."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}
    env.update(extra)
    return env


def run_cli(
    command: str, *args: str, cwd: Path, timeout: float = 900, env: dict | None = None
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


def run_app(
    command: str, *args: str, cwd: Path, timeout: float = 900, env: dict | None = None
) -> subprocess.CompletedProcess:
    """``command args…`` as ``run_cli`` gives it, run inside the test process (``in_process``;
    a restart to pin the machine continues in a subprocess) unless the command replaces its
    process (``nnexp server``): for the tests whose subject is what the command does, not its
    process (the real binary's exit codes, signals, stdin and stdout, the environment)."""
    env = env if env is not None else clean_env()
    if command in in_process.ENTRY_POINTS and not in_process.replaces_process(command, args):
        return in_process.run(command, args, cwd, env)
    return run_cli(command, *args, cwd=cwd, timeout=timeout, env=env)


#: Runs nnexp-train on sys.argv[1:] and prints, as the process exits, whether mlflow was imported.
TRAIN_PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('mlflow loaded:', 'mlflow' in sys.modules))\n"
    "sys.argv[0] = 'nnexp-train'\n"
    "from nnexp.train import main\n"
    "main()\n"
)


def run_train_probe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``nnexp-train args…`` whose stdout ends with ``mlflow loaded: True`` or ``False``."""
    return run_cli("python", "-c", TRAIN_PROBE, *args, cwd=cwd)


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


@pytest.fixture(scope="session")
def empty_store_file(tmp_path_factory) -> Path:
    """An SQLite store with MLflow's schema and no run, made once per pytest-xdist worker."""
    folder = tmp_path_factory.mktemp("empty-store")
    mlflow_client(f"sqlite:///{folder}/mlflow.db").search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def store(tmp_path: Path, empty_store_file: Path) -> str:
    """An SQLite tracking URI in the test's folder: a copy of an empty store whose schema is made
    (what a first run leaves), which spares each test's first run ~2 s of schema migrations."""
    shutil.copyfile(empty_store_file, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture
def fresh_store(tmp_path: Path) -> str:
    """The URI of an SQLite file in the test's folder that does not exist yet: for the tests of
    what creates a store (runs or parallel jobs racing on a new file)."""
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture
def train(tmp_path: Path, store: str):
    """``nnexp-train`` into the test's store, run from the test's folder, in-process."""

    def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return run_app("nnexp-train", f"tracking.uri={store}", *args, cwd=tmp_path, **kwargs)

    return run


@functools.cache
def mlflow_client(uri: str):
    """A client of the store, opened the way nnexp opens it (taking turns at creating it)."""
    from nnexp.tracking.store import open_store

    return open_store(uri).client


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


MID_JOB = """
SELECT r.run_uuid, max(m.step) FROM runs r
JOIN metrics m ON m.run_uuid = r.run_uuid AND m.key = 'train_cost'
WHERE r.status = 'RUNNING' AND (:job IS NULL OR EXISTS (
    SELECT 1 FROM tags t
    WHERE t.run_uuid = r.run_uuid AND t.key = 'nnexp.job_num' AND t.value = :job))
GROUP BY r.run_uuid
"""


def mid_job(
    db: Path, job_num: str | None = None, wait: float = 5.0, epochs: int = FAULT_EPOCHS
) -> str | None:
    """The id of a RUNNING run (of sweep job ``job_num``) in the SQLite file ``db`` whose costs
    are logged up to an epoch at least FAULT_MARGIN before ``epochs`` (the job's length);
    read-only, so it never creates the store; None while the file is missing or empty, or locked
    for over ``wait`` s."""
    try:
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=wait)
        with contextlib.closing(reader):
            rows = reader.execute(MID_JOB, {"job": job_num}).fetchall()
    except sqlite3.OperationalError:
        return None
    for run_id, last in rows:
        assert last <= epochs - FAULT_MARGIN, f"run {run_id} got to epoch {last} unseen"
        return run_id
    return None


def is_stopped(process: subprocess.Popen) -> bool:
    """Whether ``process`` is stopped by a signal (or has ended)."""
    if process.poll() is not None:
        return True
    stat = Path(f"/proc/{process.pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] in ("T", "t")


def frozen_mid_job(
    process: subprocess.Popen,
    db: Path,
    job_num: str | None = None,
    timeout: float = 600,
    epochs: int = FAULT_EPOCHS,
) -> str:
    """Stop ``process`` (SIGSTOP) at a moment its job (``job_num`` of a sweep, ``epochs`` long) is
    RUNNING in the store ``db`` with costs logged and FAULT_MARGIN epochs still to train, and
    return that run's id. The store is read while the process is stopped, so whatever the test
    does next lands mid-training however slow or loaded the machine; the test continues it with
    SIGCONT. (Stopped in the middle of a commit, it holds the file locked: the test lets it go on
    and looks again.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the job ended before it was seen mid-training"
        if mid_job(db, job_num, epochs=epochs) is None:
            time.sleep(0.05)
            continue
        os.kill(process.pid, signal.SIGSTOP)
        wait_for(lambda: is_stopped(process), timeout=60, every=0.01)
        run_id = mid_job(db, job_num, wait=0, epochs=epochs)
        if run_id is not None:
            return run_id
        os.kill(process.pid, signal.SIGCONT)
    raise AssertionError(f"no job seen mid-training within {timeout} s")


def wait_for(predicate, timeout: float = 300.0, every: float = 0.2):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"condition not reached within {timeout} s")


def status(
    url: str, user: str | None = None, password: str | None = None, timeout: float = 120.0
) -> int:
    """The HTTP status of a GET, with basic-auth credentials when given; the timeout only detects
    a hang (checking a password hash takes the server seconds on a loaded machine)."""
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
        return status(f"{uri}/health", timeout=30) == 200
    except OSError:
        return False


class ServerProcess:
    """`nnexp server` in its own process group, in ``folder``, on a fixed loopback port, tethered to
    the test process (it stops when the test process ends, by any signal)."""

    def __init__(self, folder: Path, port: int, *args: str, env: dict | None = None):
        self.folder, self.port, self.args, self.env = folder, port, args, env
        self.uri = f"http://127.0.0.1:{port}"
        self.log = folder / "server.log"
        self.process: Tethered | None = None

    def start(self, timeout: float = 90) -> ServerProcess:
        """Start the server, its output to server.log in its folder (a pipe nobody reads would
        fill up with access-log lines and stall the server); ``timeout`` is a hang detector."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = tethered.start(
            [str(BIN / "nnexp"), "server", "--port", str(self.port), *self.args],
            log=self.log,
            cwd=self.folder,
            env=self.env or clean_env(),
        )
        try:
            wait_for(lambda: healthy(self.uri) or self.process.poll() is not None, timeout=timeout)
            assert self.process.poll() is None, self.log.read_text()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the whole process group (mlflow server spawns workers and job runners)."""
        stop_group(self.process)


def stop_group(
    process: Tethered | subprocess.Popen | None, timeout: float = 20, sig: int = signal.SIGTERM
) -> None:
    """``sig`` to the process group led by ``process`` (started by ``tethered.start`` or with
    start_new_session=True); SIGKILL if it has not ended within ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):  # the group is gone, its guard still tidying
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory, empty_store_file):
    """(uri, folder) of one `nnexp server` on a free loopback port for every test (of a pytest-xdist
    worker) that only logs into a server: each such test uses an MLflow experiment of its own
    (``tracking.experiment=…``) and leaves the server running; its store starts as a copy of the
    empty one. Stopped at the end of the session."""
    folder = tmp_path_factory.mktemp("shared-server")
    shutil.copyfile(empty_store_file, folder / "mlflow.db")
    server = ServerProcess(folder, free_port()).start()
    try:
        yield server.uri, server.folder
    finally:
        server.stop()
