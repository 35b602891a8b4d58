"""Runs as a report sees them: params, status, final costs and cost curves read from the store.
A run of several batched seeds contributes its ``*_mean`` curves and their ``*_std`` bands."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nnexp.errors import UserError
from nnexp.vocabulary import CONFIG_HASH_TAG, ERROR_TAG, SPLITS, STATUS_TAG, cost_key

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class Curve:
    """A cost at the recorded epochs; ``std`` across seeds where the run had several."""

    steps: np.ndarray
    values: np.ndarray
    std: np.ndarray | None = None


@dataclass
class RunRecord:
    """One run: id, name, status label, params, reason of failure, curves by split."""

    run_id: str
    name: str
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    reason: str
    curves: dict[str, Curve] = field(default_factory=dict)

    @property
    def seeds(self) -> int:
        """How many batched seeds the run trained."""
        return int(self.params.get("train.seeds", "1"))

    def final(self, split: str) -> float:
        """The last recorded cost of ``split`` (the mean over seeds), NaN without one."""
        curve = self.curves.get(split)
        return float(curve.values[-1]) if curve is not None and len(curve.steps) else math.nan

    def final_std(self, split: str) -> float:
        """Std over the batched seeds of the last cost, NaN for a single seed."""
        curve = self.curves.get(split)
        if curve is None or curve.std is None or not len(curve.steps):
            return math.nan
        return float(curve.std[-1])

    @property
    def last_epoch(self) -> int | None:
        """The last epoch with a recorded cost."""
        curve = self.curves.get("train")
        return int(curve.steps[-1]) if curve is not None and len(curve.steps) else None


def status_label(run: Run) -> str:
    """finished, failed, diverged, killed (nnexp's tag), else MLflow's status in lower case."""
    return run.data.tags.get(STATUS_TAG) or run.info.status.lower()


def _content_order(run: Run) -> tuple[str, str]:
    return run.data.tags.get(CONFIG_HASH_TAG, ""), run.info.run_id


def read_records(client: MlflowClient, runs: list[Run]) -> list[RunRecord]:
    """Every run with its cost histories, ordered by what it trained (its config hash, then its
    id), so the same runs in any store come in the same order; refuses a set without any cost."""
    records = [_record(client, run) for run in sorted(runs, key=_content_order)]
    if not any(record.curves for record in records):
        raise UserError(
            f"none of the {len(records)} run(s) recorded a cost metric (train_cost or "
            "train_cost_mean); nothing to report"
        )
    return records


def _record(client: MlflowClient, run: Run) -> RunRecord:
    metrics = run.data.metrics
    curves = {}
    for split in SPLITS:
        if cost_key(split) in metrics:
            curves[split] = Curve(*_history(client, run.info.run_id, cost_key(split)))
        elif cost_key(split, "mean") in metrics:
            steps, mean = _history(client, run.info.run_id, cost_key(split, "mean"))
            std_steps, std = _history(client, run.info.run_id, cost_key(split, "std"))
            aligned = dict(zip(std_steps.tolist(), std.tolist(), strict=True))
            band = np.array([aligned.get(step, math.nan) for step in steps.tolist()])
            curves[split] = Curve(steps, mean, band)
    return RunRecord(
        run_id=run.info.run_id,
        name=run.info.run_name or run.info.run_id,
        status=status_label(run),
        params=dict(run.data.params),
        tags=dict(run.data.tags),
        reason=run.data.tags.get(ERROR_TAG, ""),
        curves=curves,
    )


def _history(client: MlflowClient, run_id: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a metric, one value per step (the last logged), by step."""
    points = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    by_step = {point.step: point.value for point in points}
    steps = np.array(sorted(by_step), dtype=np.int64)
    return steps, np.array([by_step[step] for step in steps.tolist()], dtype=np.float64)
