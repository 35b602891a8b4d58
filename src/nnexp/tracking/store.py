"""The MLflow store: a client for a URI, the experiment (created once), fast failure on a server
that stops answering, and quiet logs."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from nnexp.errors import UserError

# Fail within seconds, not minutes, when a tracking server stops answering (user settings win).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

for _noisy in (
    "mlflow.store.db.utils",
    "mlflow.tracking.fluent",
    "mlflow.pyfunc",
    "mlflow.models",
    "alembic",
    "mlflow.utils.environment",
):
    logging.getLogger(_noisy).setLevel(logging.ERROR)


def client_for(uri: str) -> MlflowClient:
    """A client bound to ``uri`` (and the fluent API pointed at it too)."""
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


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
            f"cannot open the MLflow store at {client.tracking_uri}: {first_line(err)}"
        ) from None
    if experiment.lifecycle_stage == "deleted":
        raise UserError(
            f"MLflow experiment {name!r} was deleted; restore it (`mlflow experiments restore`) "
            "or choose another tracking.experiment"
        )
    return experiment.experiment_id


def _create(client: MlflowClient, name: str):
    location = None
    if client.tracking_uri.startswith("sqlite:///"):
        folder = Path(client.tracking_uri[len("sqlite:///") :]).parent / "mlruns"
        location = (folder / re.sub(r"[^A-Za-z0-9_.-]", "_", name)).as_uri()
    try:
        client.create_experiment(name, artifact_location=location)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return client.get_experiment_by_name(name)


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
