"""The tracked side of one training job: the store checked before the run opens, the run (a child
of its sweep's parent when there is one), resume's look-up of finished runs, and the outputs."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from nnexp.data import Dataset
from nnexp.tracking import sweep as sweeps
from nnexp.tracking.model import log_model
from nnexp.tracking.run import RunLog, open_run, record_failed_run
from nnexp.tracking.store import client_for, open_experiment, store_errors
from nnexp.tracking.uri import check_store
from nnexp.vocabulary import RUN_TYPE_TAG


class JobTracker:
    """MLflow for one job: ``uri`` and ``experiment`` unless the job belongs to a sweep, whose
    store and experiment it then shares."""

    def __init__(self, uri: str, experiment: str, sweep: sweeps.SweepInfo | None):
        self.sweep = sweep
        self.uri = sweep.tracking_uri if sweep else uri
        check_store(self.uri)
        self.client = client_for(self.uri)
        self.experiment_id = (
            sweep.experiment_id if sweep else open_experiment(self.client, experiment)
        )

    @contextmanager
    def run(
        self, name: str, params: Mapping[str, object], tags: Mapping[str, str], dataset: Dataset
    ) -> Iterator[RunLog]:
        """Open the job's run with its params, tags and dataset input; see ``open_run``."""
        parent = self.sweep.parent_run_id if self.sweep else None
        run_type = "child" if parent else "single"
        with (
            store_errors(self.uri),
            open_run(self.experiment_id, name, parent, {**tags, RUN_TYPE_TAG: run_type}) as log,
        ):
            log.params(params)
            with store_errors(self.uri):
                log_dataset(dataset)
            yield log

    def record_invalid(
        self, name: str, params: Mapping[str, object], tags: Mapping[str, str], error: Exception
    ) -> None:
        """A sweep point whose config was rejected becomes a FAILED child with the reason."""
        record_failed_run(
            self.client,
            self.experiment_id,
            name,
            self.sweep.parent_run_id,
            {**tags, RUN_TYPE_TAG: "child"},
            params,
            str(error),
        )

    def record_lost(
        self,
        name: str,
        params: Mapping[str, object],
        tags: Mapping[str, str],
        job_num: int,
        status: str,
        reason: str,
    ) -> None:
        """A sweep job the cluster lost: see ``sweep.record_lost_job``."""
        sweeps.record_lost_job(
            self.client,
            self.sweep,
            job_num,
            name,
            params,
            {**tags, sweeps.RUN_TYPE_TAG: "child"},
            status,
            reason,
        )

    def finished_run(self, config_hash: str) -> Run | None:
        """For resume: a FINISHED run of the same config, data and code, noted on the parent."""
        run = sweeps.find_finished(self.client, self.experiment_id, config_hash)
        if run is not None and self.sweep is not None:
            sweeps.record_skip(self.client, self.sweep.parent_run_id, config_hash, run.info.run_id)
        return run

    def log_outputs(
        self, log: RunLog, files: Mapping[str, Path], dataset: Dataset, with_model: bool
    ) -> None:
        """Upload the job's files, and the pyfunc model when asked."""
        for path in files.values():
            log.artifact(path)
        if with_model:
            with store_errors(self.uri):
                log_model(files["weights"], dataset, files["weights"].parent)

    def ui_hint(self, run_id: str) -> str:
        """How to look at the run: the exact `mlflow ui` command, or the server's page."""
        if self.uri.startswith(("http://", "https://")):
            page = f"#/experiments/{self.experiment_id}/runs/{run_id}"
            return f"open {self.client.tracking_uri}/{page}"
        return f"view: {mlflow_command()} ui --backend-store-uri {self.uri}"


def log_dataset(dataset: Dataset) -> None:
    """The training split as the run's MLflow dataset input. Parallel jobs logging the same
    dataset into a store race on its row (UNIQUE constraint); the loser retries and finds it."""
    entry = mlflow.data.from_numpy(dataset.X_train, targets=dataset.y_train, name=dataset.name)
    try:
        mlflow.log_input(entry, context="training")
    except MlflowException as err:
        if "UNIQUE constraint" not in str(err):
            raise
        mlflow.log_input(entry, context="training")


def mlflow_command() -> str:
    """The `mlflow` executable beside this Python (the project's venv), else plain `mlflow`."""
    beside = Path(sys.executable).with_name("mlflow")
    return str(beside) if beside.exists() else "mlflow"
