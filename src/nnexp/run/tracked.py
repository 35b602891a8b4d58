"""The tracked side of one training job, its store checked by the caller: the run (a child of its
sweep's parent when there is one), resume's look-up of finished runs, and the outputs."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from nnexp.data import Dataset
from nnexp.run.job import JobOutcome
from nnexp.tracking import sweep as sweeps
from nnexp.tracking.model import log_model
from nnexp.tracking.run import RunLog, code_tags, open_run, record_failed_run
from nnexp.tracking.store import open_store, store_errors
from nnexp.tracking.uri import is_server
from nnexp.tracking.vocabulary import RUN_TYPE_TAG, final_cost


class JobTracker:
    """MLflow for one job in the store ``uri`` (the sweep's, when the job belongs to one), which
    the caller has checked (``uri.check_store``); ``experiment`` unless the job belongs to a sweep,
    whose experiment and code tags (computed once by its launching process) it then shares."""

    def __init__(self, uri: str, experiment: str, sweep: sweeps.SweepInfo | None):
        self.sweep = sweep
        self.uri = uri
        store = open_store(uri, None if sweep else experiment)
        self.client = store.client
        self.experiment_id = sweep.experiment_id if sweep else store.experiment_id
        self.code_tags = sweep.code_tags if sweep and sweep.code_tags else code_tags()

    @property
    def axes(self) -> list[str]:
        """The swept keys of the job's sweep (none for a single run)."""
        return list(self.sweep.axes) if self.sweep else []

    @property
    def code_version(self) -> str:
        """The code's label (commit, plus a hash of uncommitted changes) for the config hash."""
        return self.code_tags["nnexp.code_version"]

    @property
    def logs_model(self) -> bool:
        """A single run logs its own model; a sweep's parent logs its best child's at the end."""
        return self.sweep is None

    @contextmanager
    def run(
        self, name: str, params: Mapping[str, object], tags: Mapping[str, str], dataset: Dataset
    ) -> Iterator[RunLog]:
        """Open the job's run with its params, tags and dataset input; see ``open_run``."""
        parent = self.sweep.parent_run_id if self.sweep else None
        run_type = "child" if parent else "single"
        with (
            store_errors(self.uri),
            open_run(
                self.client,
                self.experiment_id,
                name,
                parent,
                {**self.code_tags, **tags, RUN_TYPE_TAG: run_type},
            ) as log,
        ):
            log.params(params)
            with store_errors(self.uri):
                log_dataset(dataset)
            yield log

    def record_invalid(
        self, name: str, params: Mapping[str, object], tags: Mapping[str, str], error: Exception
    ) -> None:
        """A sweep point whose config was rejected becomes a FAILED child with the reason (a single
        run's rejection is only reported)."""
        if self.sweep is None:
            return
        record_failed_run(
            self.client,
            self.experiment_id,
            name,
            self.sweep.parent_run_id,
            {**self.code_tags, **tags, RUN_TYPE_TAG: "child"},
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
            {**self.code_tags, **tags, RUN_TYPE_TAG: "child"},
            status,
            reason,
        )

    def finished(self, config_hash: str) -> JobOutcome | None:
        """For resume: a FINISHED run of the same config, data and code, noted on the parent."""
        run = sweeps.find_finished(self.client, self.experiment_id, config_hash)
        if run is None:
            return None
        if self.sweep is not None:
            sweeps.record_skip(self.client, self.sweep.parent_run_id, config_hash, run.info.run_id)
        return JobOutcome(final_cost(run.data.metrics, "test"), run.info.run_id)

    def log_outputs(self, log: RunLog, files: Mapping[str, Path], with_model: bool) -> None:
        """Upload the job's files, and for a single run the pyfunc model when asked (the files
        of a sweep job hold what its parent needs to log the best child's)."""
        for path in files.values():
            log.artifact(path)
        if with_model and self.logs_model:
            with store_errors(self.uri):
                log_model(files["weights"].parent)

    def ui_hint(self, run_id: str | None) -> str:
        """How to look at the run: the exact `mlflow ui` command, or the server's page."""
        if is_server(self.uri):
            page = f"#/experiments/{self.experiment_id}/runs/{run_id}"
            return f"open {self.client.tracking_uri}/{page}"
        return f"view: {mlflow_command()} ui --backend-store-uri {self.uri}"


def log_dataset(dataset: Dataset) -> None:
    """The training split as the run's MLflow dataset input. Parallel jobs logging the same
    dataset into a store race on its row (a unique constraint: SQLite's "UNIQUE constraint
    failed", PostgreSQL's "duplicate key value violates unique constraint"); the loser retries
    and finds it."""
    entry = mlflow.data.from_numpy(dataset.X_train, targets=dataset.y_train, name=dataset.name)
    try:
        mlflow.log_input(entry, context="training")
    except MlflowException as err:
        if "unique constraint" not in str(err).lower():
            raise
        mlflow.log_input(entry, context="training")


def mlflow_command() -> str:
    """The `mlflow` executable beside this Python (the project's venv), else plain `mlflow`."""
    beside = Path(sys.executable).with_name("mlflow")
    return str(beside) if beside.exists() else "mlflow"
