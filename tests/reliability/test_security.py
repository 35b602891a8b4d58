"""Nothing unsafe loaded or exposed: the server listens on loopback unless told otherwise, `--auth`
needs a real password and enforces it, config strings are data (never evaluated or run), the
model is logged from code, and a report's default folder stays inside reports/."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import (
    REPO,
    all_runs,
    assert_one_line_error,
    clean_env,
    run_app,
    run_cli,
    status,
)
from reliability.conftest import ADMIN_PASSWORD, ON_AUTH_SERVER

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


def listening(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp* shows them) with a socket listening on port."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


@pytest.mark.slow
def test_server_listens_on_loopback_only_by_default(shared_server):
    uri, _ = shared_server
    assert listening(int(uri.rsplit(":", 1)[1])) == {"0100007F"}


def server_processes(port: int) -> list[tuple[list[str], dict[str, str]]]:
    """(command line, environment) of every process serving ``port`` (`mlflow server` and its
    uvicorn workers, which name the port or inherit the parent's command)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().decode().split("\0")
            environ = (proc / "environ").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "server" in argv and str(port) in argv:
            found.append((argv, dict(e.split("=", 1) for e in environ if "=" in e)))
    return found


@pytest.mark.slow
def test_server_takes_its_store_by_environment_and_runs_no_job_runner(shared_server):
    """A backend store URI may hold a database password: it never stands on a command line,
    where `ps` shows it to every user; MLflow's job runner (eight idle processes) stays off."""
    uri, folder = shared_server
    servers = server_processes(int(uri.rsplit(":", 1)[1]))
    assert servers
    for argv, environ in servers:
        assert "--backend-store-uri" not in argv
        assert environ["MLFLOW_BACKEND_STORE_URI"] == f"sqlite:///{folder}/mlflow.db"
        assert environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


@pytest.mark.parametrize("password", [None, "short"], ids=["unset", "too short"])
def test_auth_without_a_real_password_is_refused(tmp_path, password):
    env = {k: v for k, v in clean_env().items() if k != "NNEXP_ADMIN_PASSWORD"}
    if password is not None:
        env["NNEXP_ADMIN_PASSWORD"] = password
    done = run_cli("nnexp", "server", "--auth", "--port", "1", cwd=tmp_path, env=env)
    assert_one_line_error(done, "--auth needs an admin password", "NNEXP_ADMIN_PASSWORD")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@ON_AUTH_SERVER
def test_auth_server_turns_away_anyone_without_the_password(tmp_path, auth_server):
    uri = auth_server.uri
    assert status(uri + SEARCH) == 401
    assert status(uri + SEARCH, "admin", "password") == 401
    assert status(uri + SEARCH, "admin", ADMIN_PASSWORD) == 200
    config = auth_server.folder / "mlflow-auth" / "basic_auth.ini"
    assert config.stat().st_mode & 0o077 == 0

    args = ["optim.epochs=2", "tracking.log_model=false", f"tracking.uri={uri}"]
    refused = run_app("nnexp-train", *args, cwd=tmp_path)
    assert_one_line_error(refused, "asks for a login", "MLFLOW_TRACKING_USERNAME")
    login = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
    done = run_app("nnexp-train", *args, cwd=tmp_path, env=clean_env(**login))
    assert done.returncode == 0, done.stderr


SHELL = "'$(touch pwned)'"
CODE = "\"__import__('os').system('touch pwned')\""


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ([f"dataset.name={CODE}"], ["unknown dataset", "choose one of"]),
        ([f"optim.lr={CODE}"], ["optim.lr", "pass a number"]),
        (["dataset=csv", f"dataset.path={SHELL}", "dataset.target=y"], ["does not exist"]),
        ([f"tracking.experiment={SHELL}"], None),
    ],
    ids=["code as dataset name", "code as number", "shell in a path", "shell in a name"],
)
def test_config_strings_are_data_never_code(tmp_path, store, overrides, fragments):
    done = run_app(
        "nnexp-train", f"tracking.uri={store}", "optim.epochs=1", "tracking.log_model=false",
        *overrides, cwd=tmp_path,
    )  # fmt: skip
    assert not (tmp_path / "pwned").exists()
    if fragments is None:
        assert done.returncode == 0, done.stderr
        assert len(all_runs(store, "$(touch pwned)")) == 1
    else:
        assert_one_line_error(done, *fragments)


def test_no_code_path_evaluates_or_unpickles():
    sources = "\n".join(p.read_text() for p in (REPO / "src" / "nnexp").rglob("*.py"))
    for unsafe in (
        "eval(",
        "exec(",
        "pickle.load",
        "allow_pickle=True",
        "shell=True",
        "yaml.load(",
    ):
        assert unsafe not in sources, unsafe
    loads = sources.count("np.load(") + sources.count("format.read_array(")
    assert loads == sources.count("allow_pickle=False")


#: An experiment name that, used as a folder name as it stands, would climb out of reports/.
ESCAPING = "../../escaped"


@pytest.fixture(scope="module")
def escaping_run(tmp_path_factory, empty_store_file) -> str:
    """The tracking URI of a store with one run, its model logged, in the experiment ESCAPING:
    one `nnexp-train` for the model check and the report's folder check."""
    folder = tmp_path_factory.mktemp("escaping-run")
    shutil.copyfile(empty_store_file, folder / "mlflow.db")
    uri = f"sqlite:///{folder}/mlflow.db"
    done = run_app(
        "nnexp-train", f"tracking.uri={uri}", "optim.epochs=2", f"tracking.experiment={ESCAPING}",
        cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return uri


def is_pickle(path: Path) -> bool:
    """Whether the file starts like a pickle (protocol 2 to 5)."""
    head = path.read_bytes()[:2]
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def test_logged_model_is_code_and_arrays_with_no_pickle(tmp_path, escaping_run):
    (run,) = all_runs(escaping_run, ESCAPING)
    import mlflow

    mlflow.set_tracking_uri(escaping_run)
    uri = f"runs:/{run.info.run_id}/model"
    local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "model")))
    files = [p for p in local.rglob("*") if p.is_file()]
    assert "model_code.py" in {p.name for p in files}
    assert not [p for p in files if is_pickle(p)]
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in (local / "MLmodel").read_text()
    with np.load(local / "artifacts" / "weights.npz", allow_pickle=False) as archive:
        assert {archive[name].dtype.kind for name in archive.files} == {"f"}


@pytest.mark.slow
def test_report_default_folder_stays_inside_reports(tmp_path, escaping_run):
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    report = run_app("nnexp", "report", ESCAPING, f"--tracking-uri={escaping_run}", cwd=work)
    assert report.returncode == 0, report.stderr
    assert (work / "reports" / "escaped" / "report.md").is_file()
    assert not (tmp_path / "escaped").exists()
    assert sorted(p.name for p in work.iterdir()) == ["reports"]
