"""A batched sweep's child runs, written after their group trained, at MLflow's floor: per child
one ``create_run``, one ``log_batch`` (params, every curve point, status tags), the dataset input,
the artifacts copied straight into the run's artifact store, and ``set_terminated``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from nnexp.data import Dataset
from nnexp.privacy import redact_values
from nnexp.tracking.job import JobTracker
from nnexp.tracking.run import MAX_METRICS, MAX_PARAMS, MAX_TAGS, process_tags
from nnexp.tracking.store import store_errors
from nnexp.vocabulary import ERROR_TAG, PARENT_RUN_TAG, RUN_TYPE_TAG, STATUS_TAG

#: Items MLflow takes in one log_batch call.
MAX_ITEMS = 1000


class ChildWriter:
    """Writes the children of one sweep into its store, the dataset inputs built once per data."""

    def __init__(self, tracker: JobTracker):
        self.tracker = tracker
        self.client = tracker.client
        self._inputs: dict[str, DatasetInput] = {}
        self._process_tags = {**context_tags(), **process_tags()}

    def dataset_input(self, dataset: Dataset) -> DatasetInput:
        """The training split as MLflow's dataset input (as ``mlflow.log_input`` builds it)."""
        key = dataset.digest()
        if key not in self._inputs:
            import mlflow

            entry = mlflow.data.from_numpy(
                dataset.X_train, targets=dataset.y_train, name=dataset.name
            )
            self._inputs[key] = DatasetInput(
                entry._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", "training")]
            )
        return self._inputs[key]

    def write(
        self,
        name: str,
        params: Mapping[str, object],
        tags: Mapping[str, str],
        points: Sequence[tuple[int, Mapping[str, float]]],
        dataset: Dataset | None,
        files: Sequence[Path],
        status: str,
        reason: str | None = None,
    ) -> str:
        """One child run ended ``status`` (FINISHED, FAILED, KILLED) with its params, the points
        (step, {metric: value}), the ``nnexp.status`` label (``tags`` may carry ``diverged``) and
        reason, the dataset input and ``files`` as artifacts; returns its id."""
        sweep = self.tracker.sweep
        all_tags = {
            **self.tracker.code_tags,
            **tags,
            **self._process_tags,
            RUN_TYPE_TAG: "child",
            PARENT_RUN_TAG: sweep.parent_run_id,
        }
        end_tags = {STATUS_TAG: tags.get(STATUS_TAG, status.lower())}
        if reason:
            end_tags[ERROR_TAG] = reason[:5000]
        with store_errors(self.tracker.uri):
            run = self.client.create_run(
                self.tracker.experiment_id,
                run_name=name,
                tags=redact_values({k: v for k, v in all_tags.items() if k != STATUS_TAG}),
            )
            run_id = run.info.run_id
            stamp = int(time.time() * 1000)
            metrics = [
                Metric(key, float(value), stamp, step)
                for step, values in points
                for key, value in values.items()
            ]
            param_items = [Param(k, v) for k, v in redact_values(params).items()]
            tag_items = [RunTag(k, v) for k, v in redact_values(end_tags).items()]
            for batch in batches(param_items, metrics, tag_items):
                self.client.log_batch(run_id, **batch)
            if dataset is not None:
                self.client.log_inputs(run_id, [self.dataset_input(dataset)])
            if files:
                repo = get_artifact_repository(
                    run.info.artifact_uri, tracking_uri=self.client.tracking_uri
                )
                for path in files:
                    repo.log_artifact(str(path))
            self.client.set_terminated(run_id, status)
        return run_id


def context_tags() -> dict[str, str]:
    """The tags MLflow's ``start_run`` adds to every run (user, source name and type), once."""
    from mlflow.tracking.context.registry import resolve_tags

    return dict(resolve_tags({}))


def batches(
    params: list[Param], metrics: list[Metric], tags: list[RunTag]
) -> list[dict[str, list]]:
    """The fewest log_batch calls within MLflow's limits (100 params, 1000 metrics, 100 tags and
    1000 items a call); the tags go with the last."""
    calls: list[dict[str, list]] = []
    while params or metrics or not calls:
        p = params[:MAX_PARAMS]
        m = metrics[: min(MAX_METRICS, MAX_ITEMS - len(p) - MAX_TAGS)]
        calls.append({"params": p, "metrics": m, "tags": []})
        params, metrics = params[len(p) :], metrics[len(m) :]
    calls[-1]["tags"] = tags[:MAX_TAGS]
    return calls
