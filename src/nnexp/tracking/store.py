"""The MLflow store: a client for a URI, the experiment (created once), fast failure on a server
that stops answering, and quiet logs."""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from nnexp.errors import StoreFailed, UserError, first_line
from nnexp.safety.privacy import redact
from nnexp.tracking.uri import is_server, split_credentials, sqlite_file

#: How MLflow words a request that no server listened to (after all its retries).
REFUSED = "Connection refused"
#: The MLflow setting of how many times a failed request to a server is retried.
RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
#: MLflow settings nnexp needs unless the user set them: fail within seconds, not minutes, when a
#: tracking server stops answering; no progress bars; a model states its own exact requirements
#: (MLflow would otherwise copy the uv.lock of whatever uv project the job was launched from).
MLFLOW_DEFAULTS = {
    RETRIES: "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOG_UV_FILES": "false",
    "MLFLOW_UV_AUTO_DETECT": "false",
}
NOISY_LOGGERS = (
    "urllib3.connectionpool",
    "mlflow.tracking.fluent",
    "mlflow.pyfunc",
    "mlflow.models",
    "alembic",
    "mlflow.utils.environment",
)
#: Loggers that print a store failure's traceback (100+ lines for a locked or full database)
#: before nnexp's one line, which says the same: silenced, not just kept to errors.
SILENT_LOGGERS = ("mlflow.store", "sqlalchemy")


def configure_mlflow() -> None:
    """Apply MLFLOW_DEFAULTS where the environment leaves them unset (MLflow reads them at each
    request), quiet MLflow's chatty loggers and silence the store's tracebacks; called when a
    store is opened, never at import."""
    for key, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(key, value)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for name in SILENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


@dataclass(frozen=True)
class Store:
    """An open MLflow store: a client bound to its URI, and the experiment runs go into (None
    when the opener reads runs of any experiment)."""

    client: MlflowClient
    experiment_id: str | None


def open_store(uri: str, experiment: str | None = None) -> Store:
    """The one way nnexp opens a store (its URI checked by ``uri.checked_uri``): a client, and
    the id of ``experiment``, created with the store's schema if needed."""
    client = _client_for(uri)
    return Store(client, open_experiment(client, experiment) if experiment else None)


def _client_for(uri: str) -> MlflowClient:
    """A client bound to ``uri`` (and the fluent API pointed at it too). An http(s) URI's
    ``user:password@`` becomes MLflow's basic auth (MLFLOW_TRACKING_USERNAME/PASSWORD of this
    process and the jobs it starts) and MLflow gets the URI without it. Creating the client
    creates or migrates an SQLite store's schema: nnexp processes take turns at that (a lock
    file beside the database), since two migrations of one fresh file at once break both."""
    uri, user, password = split_credentials(uri)
    if user is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = user
    if password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    configure_mlflow()
    mlflow.set_tracking_uri(uri)
    with _schema_lock(uri):
        try:
            return MlflowClient(tracking_uri=uri)
        except Exception as err:
            raise UserError(
                f"cannot open the MLflow store at {redact(uri)}: {explain(err)}"
            ) from None


@contextmanager
def _schema_lock(uri: str) -> Iterator[None]:
    database = sqlite_file(uri)
    if database is None:
        yield
        return
    with database.with_name(f".{database.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_experiment(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, creating it (and the store's schema) if needed.

    In an SQLite store its artifacts go beside the database, in mlruns/<name>.
    """
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            experiment = _create(client, name)
    except MlflowException as err:
        raise UserError(
            f"cannot open the MLflow store at {redact(client.tracking_uri)}: {explain(err)}"
        ) from None
    if experiment.lifecycle_stage == "deleted":
        raise UserError(
            f"MLflow experiment {name!r} was deleted; restore it (`mlflow experiments restore`) "
            "or choose another tracking.experiment"
        )
    return experiment.experiment_id


#: Tells the MLflow UI to show the experiment as model training (runs, params, metric charts).
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def _create(client: MlflowClient, name: str):
    location = None
    database = sqlite_file(client.tracking_uri)
    if database is not None:
        folder = database.parent / "mlruns"
        location = (folder / re.sub(r"[^A-Za-z0-9_.-]|^\.+$", "_", name)).as_uri()
    try:
        client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return client.get_experiment_by_name(name)


@contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """MLflow and file-system failures while logging, as StoreFailed naming the store."""
    try:
        yield
    except MlflowException as err:
        if is_server(uri) and REFUSED in str(err):
            stop_retrying()
        cause = _database_gone(uri) or explain(err)
        raise StoreFailed(f"the MLflow store at {redact(uri)} failed: {cause}") from None
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        raise StoreFailed(
            f"cannot write the run's artifacts for {redact(uri)}: {err.strerror or err}{where}; "
            "free space or fix the folder's permissions"
        ) from None


def stop_retrying() -> None:
    """Once a server refused a request through all its retries, this process's (and its later
    workers') requests try once, unless the user chose the retries: a server that refuses is
    down, not busy, and each retry only put off the failure (~2.5 s a request, paid again by each
    remaining job of a sweep and by its summary)."""
    if os.environ.get(RETRIES) == MLFLOW_DEFAULTS[RETRIES]:
        os.environ[RETRIES] = "0"


def _database_gone(uri: str) -> str | None:
    """Why an SQLite store's file is gone (its folder removed, the file deleted or emptied while
    in use: SQLite then reports a read-only database or a missing table), or None."""
    database = sqlite_file(uri)
    if database is None:
        return None
    if not database.parent.is_dir():
        return f"the database's folder {database.parent} was removed while in use; restore it"
    if not database.is_file() or database.stat().st_size == 0:
        return f"the database file {database.name} was deleted while in use; restore it"
    return None


#: Phrases of common low-level failures, and how they read to a user: the cause and the fix.
EXPLAINED = {
    REFUSED: "the server stopped answering (connection refused)",
    "Read timed out": "the server did not answer in time",
    "No space left on device": "no space left on the device; free space there",
    "database or disk is full": "no space left on the database's device; free space there",
    "database is locked": (
        "the SQLite database stayed locked by another process for over 20 s; let it finish or "
        "close it (an sqlite3 shell, a DB browser)"
    ),
    "readonly database": (
        "the SQLite database or its folder is read-only; fix their permissions or mount"
    ),
    "Read-only file system": "the store's file system is read-only; remount it writable",
    "unable to open database file": (
        "the SQLite database file or its folder is gone (deleted or moved); restore it"
    ),
    "no such table": "the SQLite database file was replaced by an empty one; restore it",
    "disk I/O error": (
        "the SQLite database file was deleted or its disk failed while in use; restore it"
    ),
    "error code 401": (
        "the server asks for a login; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
    ),
    "error code 403": "the server's login has no permission for this; ask its admin for one",
}


def explain(err: BaseException) -> str:
    """A short reading of an MLflow error: a known cause, or the message's first line."""
    text = str(err)
    for phrase, meaning in EXPLAINED.items():
        if phrase in text:
            return meaning
    return redact(first_line(err))[:300]
