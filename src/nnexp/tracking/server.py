"""`nnexp server`: an MLflow tracking server for jobs on other machines, bound to 127.0.0.1
unless a host is given; by default with an SQLite store and an artifact folder under the working
folder, or any database URI and artifact URI (postgresql://…, s3://…) given."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from nnexp import console
from nnexp.errors import UserError
from nnexp.safety.privacy import redact
from nnexp.tracking.auth import admin_password, auth_environment
from nnexp.tracking.uri import check_scheme, check_store, scheme_of, sqlite_path

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Seconds a busy worker may take to answer uvicorn's health ping before it is killed and
#: restarted (uvicorn's 5 s default kills workers mid-request on a loaded machine, losing writes).
WORKER_HEALTHCHECK = 60


def server_command(host: str, port: int, artifacts: str, workers: int, auth: bool) -> list[str]:
    """The `mlflow server` command line; the backend store URI, which may hold a database
    password, goes by the environment (``server_environment``), never where `ps` shows it."""
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--host", host,
        "--port", str(port),
        "--artifacts-destination", artifacts,
        "--workers", str(workers),
        "--uvicorn-opts", f"--timeout-worker-healthcheck {WORKER_HEALTHCHECK}",
    ]  # fmt: skip
    if auth:
        command += ["--app-name", "basic-auth"]
    return command


def server_environment(backend_uri: str) -> dict[str, str]:
    """The server's environment: this one with the backend store URI, and MLflow's background
    job runner off unless the user turned it on (nnexp uses none of its jobs, and it starts
    about eight more processes)."""
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": backend_uri}
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env


def prepare_store(backend_uri: str, work_dir: Path) -> str:
    """Check the backend store and create its schema once, before the server's workers start
    (several workers migrating a fresh SQLite file at once race on it)."""
    check_scheme(backend_uri)
    if scheme_of(backend_uri) == "sqlite":
        backend_uri = f"sqlite:///{sqlite_path(backend_uri, work_dir)}"
    check_store(backend_uri)
    from nnexp.tracking.store import open_store

    open_store(backend_uri, "Default")
    return backend_uri


def artifact_destination(artifacts: str, work_dir: Path) -> str:
    """Where the server keeps artifacts: a URI with a scheme (s3://bucket/path, gs://…) as given,
    MLflow's to use; anything else a local folder, made absolute and created."""
    if len(urlparse(artifacts).scheme) > 1:
        return artifacts
    folder = (work_dir / artifacts).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` once and let it go, as the server will (SO_REUSEADDR, as uvicorn): a
    port in use, a privileged port or an address not of this machine is one line, before
    anything starts (MLflow would print a traceback and still exit 0)."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise UserError(f"--host {host} cannot be resolved ({err.strerror}); check it") from None
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as err:
                raise UserError(
                    f"nnexp server cannot listen on {host}:{port} ({err.strerror}); "
                    "choose another --port, or stop what listens there"
                ) from None


def serve(
    host: str, port: int, backend_uri: str | None, artifacts: str | None, workers: int, auth: bool
) -> None:
    """Replace this process by `mlflow server` (Ctrl-C and signals reach MLflow directly)."""
    check_port(host, port)
    password = admin_password(dict(os.environ)) if auth else None
    work_dir = Path.cwd()
    backend = prepare_store(backend_uri or f"sqlite:///{work_dir}/mlflow.db", work_dir)
    destination = artifact_destination(artifacts or "mlartifacts", work_dir)
    env = server_environment(backend)
    if password is not None:
        env = auth_environment(env, work_dir / "mlflow-auth", password)
        env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_hex(32))
    if host not in LOOPBACK and not auth:
        console.warning(
            f"nnexp server: listening on {host} without authentication: anyone who reaches it "
            "can read and change runs; see the README's section on `--auth`"
        )
    command = server_command(host, port, destination, workers, auth)
    console.info(
        f"nnexp server: http://{host}:{port} · store {redact(backend)} · artifacts {destination}"
    )
    sys.stdout.flush()  # exec discards what Python still buffers
    os.execve(command[0], command, env)
