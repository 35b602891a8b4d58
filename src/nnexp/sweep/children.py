"""A batched sweep's child runs. In an SQLite store a group that ended before
its children were opened writes them all in one transaction (``write_all``: below MLflow's
per-run floor); otherwise each child at that floor: one ``create_run`` with the dataset input,
one ``log_batch`` (params, every curve point, status tags), the artifacts copied straight into
the run's artifact store, and ``set_terminated``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from nnexp import console, private_api
from nnexp.data import Dataset
from nnexp.run.tracked import JobTracker
from nnexp.safety.privacy import redact_values
from nnexp.tracking.run import MAX_METRICS, MAX_PARAMS, MAX_TAGS, end_run, process_tags
from nnexp.tracking.store import store_errors
from nnexp.tracking.vocabulary import PARENT_RUN_TAG, RUN_TYPE_TAG

#: Items MLflow takes in one log_batch call.
MAX_ITEMS = 1000
#: Children written per transaction by ``write_all``: a group of thousands holds its rows (about
#: 200 metric points a child) in memory one part at a time.
BULK_CHILDREN = 256


@dataclass
class Child:
    """An open child run; its params go with its first batch."""

    run_id: str
    artifact_uri: str
    params: list[Param]


@dataclass
class Ended:
    """A child run to write whole (``ChildWriter.write_all``): as ``open``, ``send`` and ``end``
    would have written it, its files uploaded as its artifacts."""

    name: str
    params: Mapping[str, object]
    tags: Mapping[str, str]
    dataset: Dataset
    points: Sequence[tuple[int, Mapping[str, float]]]
    end_tags: Mapping[str, str]
    files: Sequence[Path]
    status: str
    start_time: int


class ChildWriter:
    """Writes the children of one sweep into its store, the dataset inputs built once per data.
    A child costs MLflow's floor: ``open`` (create_run and the dataset input), one ``send`` (its
    params, points and end tags in one log_batch), ``end`` (artifacts copied straight into the
    run's artifact store, set_terminated); a long job's points may come in several sends."""

    def __init__(self, tracker: JobTracker):
        self.tracker = tracker
        self.client = tracker.client
        self._inputs: dict[str, DatasetInput] = {}
        self._process_tags = {**context_tags(), **process_tags()}
        #: Whether the store takes ``write_all`` in one transaction (an SQLite store).
        self.bulk = private_api.writes_in_bulk(self.client)

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

    def child_tags(self, tags: Mapping[str, str]) -> dict[str, str]:
        """A child's tags at creation: code, job, process and MLflow context tags, parent link."""
        return {
            **self.tracker.code_tags,
            **tags,
            **self._process_tags,
            RUN_TYPE_TAG: "child",
            PARENT_RUN_TAG: self.tracker.sweep.parent_run_id,
        }

    def open(
        self, name: str, params: Mapping[str, object], tags: Mapping[str, str], dataset: Dataset
    ) -> Child:
        """Create the child RUNNING under the sweep's parent with its tags and dataset input."""
        with store_errors(self.tracker.uri):
            run = self.client.create_run(
                self.tracker.experiment_id,
                run_name=name,
                tags=redact_values(self.child_tags(tags)),
            )
            self.client.log_inputs(run.info.run_id, [self.dataset_input(dataset)])
        items = [Param(k, v) for k, v in redact_values(params).items()]
        return Child(run.info.run_id, run.info.artifact_uri, items)

    def send(
        self,
        child: Child,
        points: Sequence[tuple[int, Mapping[str, float]]],
        end_tags: Mapping[str, str] | None = None,
    ) -> None:
        """Log the points (step, {metric: value}), with the params not yet sent and ``end_tags``,
        in as few log_batch calls as MLflow allows."""
        metrics = as_metrics(points)
        tags = [RunTag(k, v) for k, v in redact_values(end_tags or {}).items()]
        if not (metrics or tags or child.params):
            return
        with store_errors(self.tracker.uri):
            for batch in batches(child.params, metrics, tags):
                self.client.log_batch(child.run_id, **batch)
        child.params = []

    def end(self, child: Child, files: Sequence[Path], status: str) -> None:
        """Upload ``files`` as the run's artifacts and end it ``status``."""
        with store_errors(self.tracker.uri):
            if files:
                repo = get_artifact_repository(
                    child.artifact_uri, tracking_uri=self.client.tracking_uri
                )
                for path in files:
                    repo.log_artifact(str(path))
            self.client.set_terminated(child.run_id, status)

    def write_all(self, children: Sequence[Ended]) -> None:
        """Write the ended children in transactions of the SQL store of BULK_CHILDREN each (only
        when ``bulk``): every record ``open``, ``send`` and ``end`` write, files uploaded first."""
        for start in range(0, len(children), BULK_CHILDREN):
            self._write_part(children[start : start + BULK_CHILDREN])

    def _write_part(self, children: Sequence[Ended]) -> None:
        end_time = int(time.time() * 1000)
        records = [
            private_api.RunRecord(
                name=child.name,
                status=child.status,
                start_time=child.start_time,
                end_time=end_time,
                tags=[
                    RunTag(k, v)
                    for k, v in redact_values(
                        {**self.child_tags(child.tags), **child.end_tags}
                    ).items()
                ],
                params=[Param(k, v) for k, v in redact_values(child.params).items()],
                metrics=as_metrics(child.points),
                datasets=[self.dataset_input(child.dataset)],
            )
            for child in children
        ]
        files = iter([child.files for child in children])

        def upload(run_id: str, artifact_uri: str) -> None:
            paths = next(files)
            if paths:
                repo = get_artifact_repository(artifact_uri, tracking_uri=self.client.tracking_uri)
                for path in paths:
                    repo.log_artifact(str(path))

        with store_errors(self.tracker.uri):
            private_api.write_runs_in_bulk(self.client, self.tracker.experiment_id, records, upload)

    def log_on_parent(self, path: Path) -> None:
        """Upload one file into the sweep parent's artifacts."""
        with store_errors(self.tracker.uri):
            self.client.log_artifact(self.tracker.sweep.parent_run_id, str(path))

    def abandon(self, child: Child, reason: str) -> None:
        """End a child whose logging failed FAILED with the reason, if the store lets us."""
        try:
            end_run(self.client, child.run_id, "FAILED", reason)
        except Exception:
            console.error(
                f"could not mark run {child.run_id} FAILED; `nnexp runs repair` fixes its status "
                "once the store is reachable again"
            )


def as_metrics(points: Sequence[tuple[int, Mapping[str, float]]]) -> list[Metric]:
    """The points (step, {metric: value}) as MLflow metrics, all stamped now."""
    stamp = int(time.time() * 1000)
    return [
        Metric(key, float(value), stamp, step)
        for step, values in points
        for key, value in values.items()
    ]


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
