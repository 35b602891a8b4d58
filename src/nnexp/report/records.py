"""Runs as a report sees them: params, status, final costs and cost curves read from the store.
A run of several batched seeds contributes its ``*_mean`` curves and their ``*_std`` bands."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nnexp import private_api
from nnexp.errors import UserError
from nnexp.tracking.vocabulary import CONFIG_HASH_TAG, ERROR_TAG, SPLITS, STATUS_TAG, cost_key

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class Curve:
    """A cost at the recorded epochs; ``std`` across seeds where the run had several."""

    steps: np.ndarray
    values: np.ndarray
    std: np.ndarray | None = None


#: Params that only pick a replicate: runs differing in these alone are one setting.
SEED_KEYS = ("seed", "dataset.seed", "dataset.digest")
#: Above this many runs, only the curves of a sample of settings are read (see ``curve_sample``).
CURVE_RUNS = 200
#: A batched run's metric of one seed: ``test_cost/seed_3``.
PER_SEED = re.compile(r"(?P<name>.+)/seed_(?P<seed>-?\d+)")
BEST_PREFIX = "best_"


def maximized(name: str) -> bool:
    """Whether a larger ``name`` is better: accuracies; costs (everything else) are minimized."""
    return name.endswith("accuracy")


@dataclass
class RunRecord:
    """One run: id, name, status label, params, tags, reason of failure, cost curves by split
    (when read), and its metrics' final values: ``finals`` (a batched run's mean over seeds),
    ``stds`` (its std), ``per_seed`` (name → seed → value) and ``best`` (``best_*`` summaries)."""

    run_id: str
    name: str
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    reason: str
    curves: dict[str, Curve] = field(default_factory=dict)
    finals: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)
    per_seed: dict[str, dict[str, float]] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)

    @property
    def seeds(self) -> int:
        """How many batched seeds the run trained."""
        return int(self.params.get("train.seeds", "1"))

    @property
    def setting(self) -> tuple[tuple[str, str], ...]:
        """Its params less SEED_KEYS: what runs of one setting over several seeds share."""
        return tuple(sorted((k, v) for k, v in self.params.items() if k not in SEED_KEYS))

    def metric(self, name: str) -> float:
        """The final value of metric ``name`` (the mean over batched seeds), NaN without one."""
        value = self.finals.get(name, math.nan)
        if math.isnan(value) and name.endswith("_cost"):
            curve = self.curves.get(name.removesuffix("_cost"))
            if curve is not None and len(curve.steps):
                return float(curve.values[-1])
        return value

    def final(self, split: str) -> float:
        """The last recorded cost of ``split`` (the mean over seeds), NaN without one."""
        return self.metric(cost_key(split))

    def final_std(self, split: str) -> float:
        """Std over the batched seeds of the last cost, NaN for a single seed."""
        if cost_key(split) in self.stds:
            return self.stds[cost_key(split)]
        curve = self.curves.get(split)
        if curve is None or curve.std is None or not len(curve.steps):
            return math.nan
        return float(curve.std[-1])

    def replicates(self, name: str) -> dict[str, float]:
        """Replicate → final value of ``name``: a batched run's seeds (``seed=3``), else the run
        itself under its seed keys' values."""
        if self.per_seed.get(name):
            shared = _replicate(self.params, without="seed")
            return {
                ",".join(filter(None, (shared, f"seed={seed}"))): value
                for seed, value in sorted(self.per_seed[name].items())
            }
        value = self.metric(name)
        return {_replicate(self.params): value} if math.isfinite(value) else {}

    def best_of(self, name: str) -> tuple[float, float]:
        """(best value, its epoch) of ``name``: the run's ``best_*`` summaries, else found on its
        curve when read; NaNs otherwise."""
        if f"{BEST_PREFIX}{name}" in self.best:
            epoch = self.best.get(f"{BEST_PREFIX}{name}_epoch", math.nan)
            return self.best[f"{BEST_PREFIX}{name}"], epoch
        curve = self.curves.get(name.removesuffix("_cost")) if name.endswith("_cost") else None
        if curve is None or not len(curve.steps) or not np.isfinite(curve.values).any():
            return math.nan, math.nan
        values = np.where(np.isfinite(curve.values), curve.values, np.inf)
        at = int(np.argmin(-values if maximized(name) else values))
        return float(curve.values[at]), float(curve.steps[at])

    @property
    def last_epoch(self) -> int | None:
        """The last epoch with a recorded cost."""
        curve = self.curves.get("train")
        return int(curve.steps[-1]) if curve is not None and len(curve.steps) else None


def _replicate(params: dict[str, str], without: str = "") -> str:
    """``seed=0,dataset.seed=1``: the run's replicate keys (``dataset.digest`` follows from
    ``dataset.seed``) less ``without``."""
    keys = [k for k in SEED_KEYS[:2] if k in params and k != without]
    return ",".join(f"{k}={params[k]}" for k in keys)


def metric_names(records: list[RunRecord]) -> list[str]:
    """The metrics the runs recorded a final value of: costs first, then the rest by name."""
    names = {name for record in records for name in record.finals}
    return sorted(names, key=lambda n: (not n.endswith("_cost"), n != "train_cost", n))


def status_label(run: Run) -> str:
    """finished, failed, diverged, killed (nnexp's tag), else MLflow's status in lower case."""
    return run.data.tags.get(STATUS_TAG) or run.info.status.lower()


def _content_order(run: Run) -> tuple[str, str]:
    return run.data.tags.get(CONFIG_HASH_TAG, ""), run.info.run_id


def read_records(
    client: MlflowClient, runs: list[Run], curve_runs: int = CURVE_RUNS
) -> list[RunRecord]:
    """Every run with its final metrics (from the search's latest values), ordered by what it
    trained (its config hash, then its id), so the same runs in any store come in the same order;
    the cost curves of ``curve_sample``'s runs read from their histories. Refuses a set
    without any cost."""
    records = [record_of(run) for run in sorted(runs, key=_content_order)]
    if not any(math.isfinite(r.final("train")) for r in records):
        raise UserError(
            f"none of the {len(records)} run(s) recorded a cost metric (train_cost or "
            "train_cost_mean); nothing to report"
        )
    read_curves(client, curve_sample(records, curve_runs))
    return records


def curve_sample(records: list[RunRecord], limit: int = CURVE_RUNS) -> list[RunRecord]:
    """The runs whose curves are read: all of them up to ``limit``; beyond, whole settings
    (every seed of one) evenly spaced in rank by mean final test cost, best and worst
    included, as many as keep the runs within ``limit``."""
    if len(records) <= limit:
        return list(records)
    by_setting: dict[tuple, list[RunRecord]] = {}
    for record in records:
        by_setting.setdefault(record.setting, []).append(record)
    ranked = sorted(by_setting.values(), key=_setting_rank)
    count = max(1, limit * len(ranked) // len(records))
    while True:
        picks = sorted({round(i * (len(ranked) - 1) / max(count - 1, 1)) for i in range(count)})
        drawn = [record for index in picks for record in ranked[index]]
        if len(drawn) <= limit or count == 1:
            return drawn
        count -= 1


def _setting_rank(runs: list[RunRecord]) -> tuple:
    finite = [v for v in (r.final("test") for r in runs) if math.isfinite(v)]
    return (not finite, float(np.mean(finite)) if finite else 0.0, runs[0].run_id)


def record_of(run: Run) -> RunRecord:
    """A run's record from what a search returns (no history read)."""
    finals: dict[str, float] = {}
    stds: dict[str, float] = {}
    per_seed: dict[str, dict[str, float]] = {}
    best: dict[str, float] = {}
    metrics = run.data.metrics
    for key, value in metrics.items():
        seeded = PER_SEED.fullmatch(key)
        if seeded:
            per_seed.setdefault(seeded["name"], {})[seeded["seed"]] = value
        elif key.startswith(BEST_PREFIX):
            best[key.removesuffix("_mean")] = value
        elif key.endswith("_mean") and f"{key[:-5]}_std" in metrics:
            finals[key[:-5]] = value
        elif key.endswith("_std") and f"{key[:-4]}_mean" in metrics:
            stds[key[:-4]] = value
        else:
            finals[key] = value
    return RunRecord(
        run_id=run.info.run_id,
        name=run.info.run_name or run.info.run_id,
        status=status_label(run),
        params=dict(run.data.params),
        tags=dict(run.data.tags),
        reason=run.data.tags.get(ERROR_TAG, ""),
        finals=finals,
        stds=stds,
        per_seed=per_seed,
        best=best,
    )


def read_curves(client: MlflowClient, records: list[RunRecord]) -> None:
    """Set each record's train and test cost curves (a batched run's mean ± std), each metric
    read for all the records at once (see ``histories``)."""
    wanted: dict[str, list[str]] = {}
    for record in records:
        for name in _curve_names(record):
            wanted.setdefault(name, []).append(record.run_id)
    read = {name: histories(client, run_ids, name) for name, run_ids in wanted.items()}
    for record in records:
        record.curves = _assemble(record, {n: read[n][record.run_id] for n in _curve_names(record)})


def cost_curves(client: MlflowClient, record: RunRecord) -> dict[str, Curve]:
    """The run's train and test cost curves by split (a batched run's mean ± std)."""
    names = _curve_names(record)
    return _assemble(record, {name: history(client, record.run_id, name) for name in names})


def _curve_keys(record: RunRecord) -> dict[str, tuple[str, ...]]:
    """Split → the metrics its curve is read from: (mean, std) of a batched run, else (cost,)."""
    keys = {}
    for split in SPLITS:
        if cost_key(split) in record.stds:
            keys[split] = (cost_key(split, "mean"), cost_key(split, "std"))
        elif cost_key(split) in record.finals:
            keys[split] = (cost_key(split),)
    return keys


def _curve_names(record: RunRecord) -> list[str]:
    return [name for names in _curve_keys(record).values() for name in names]


def _assemble(
    record: RunRecord, read: dict[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, Curve]:
    curves = {}
    for split, names in _curve_keys(record).items():
        if len(names) == 2:
            steps, mean = read[names[0]]
            std_steps, std = read[names[1]]
            aligned = dict(zip(std_steps.tolist(), std.tolist(), strict=True))
            band = np.array([aligned.get(step, math.nan) for step in steps.tolist()])
            curves[split] = Curve(steps, mean, band)
        else:
            curves[split] = Curve(*read[names[0]])
    return curves


#: Run ids per query of a bulk history read (well under SQLite's limit of bound variables).
BULK_RUNS = 500


def histories(
    client: MlflowClient, run_ids: list[str], key: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Run id → (steps, values) of metric ``key``, as ``history`` gives them. A SQL store
    answers for up to BULK_RUNS runs in one query (MLflow's ``get_metric_history_bulk``, which
    its client does not expose: ~30 ms for 200 runs where one request per run takes ~40 ms
    each on a store of 10,000 runs, because SQLite scans the metric's rows either way); other
    stores (a tracking server, files) one request per run."""
    bulk = private_api.metric_history_bulk(client)
    if bulk is None:
        return {run_id: history(client, run_id, key) for run_id in run_ids}
    points: dict[str, list] = {run_id: [] for run_id in run_ids}
    unique = list(points)
    for start in range(0, len(unique), BULK_RUNS):
        for found in bulk(unique[start : start + BULK_RUNS], key, None):
            points[found.run_id].append(found)
    return {run_id: _by_step(found) for run_id, found in points.items()}


def history(client: MlflowClient, run_id: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a metric, one value per step (the last logged), by step."""
    return _by_step(client.get_metric_history(run_id, key))


def _by_step(points) -> tuple[np.ndarray, np.ndarray]:
    ordered_points = sorted(points, key=lambda m: (m.step, m.timestamp))
    by_step = {point.step: point.value for point in ordered_points}
    steps = np.array(sorted(by_step), dtype=np.int64)
    return steps, np.array([by_step[step] for step in steps.tolist()], dtype=np.float64)
