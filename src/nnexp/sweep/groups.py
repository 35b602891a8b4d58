"""Sweep jobs that train together. Jobs whose resolved configs are equal except for the per-copy
keys (``optim.lr``, ``optim.momentum``, ``regularization.l2``, ``seed``, ``dataset.seed``) and
whose data are equal (same dataset digest) form a group; a group trains as ONE batched
``core.train`` call on the S = Σ train.seeds copies of its jobs, each copy with its own lr, λ,
momentum and generator. Each job's slice of the result is what the job trains alone, bit for
bit."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from nnexp import core
from nnexp.run import deterministic, memory
from nnexp.run.job import Job, params_view

#: Keys that may differ between the copies of one batched computation.
PER_COPY_KEYS = (
    ("optim", "lr"),
    ("optim", "momentum"),
    ("regularization", "l2"),
    ("seed",),
    ("dataset", "seed"),
)


def group_key(job: Job) -> str:
    """Equal keys, same arrays and schedule: the resolved config without the per-copy keys and
    the keys that only say where results go (bar ``tracking.log_every`` and the metrics
    recorded), plus the data digest."""
    view = json.loads(json.dumps(params_view(job.record)))
    for path in PER_COPY_KEYS:
        node = view
        for part in path[:-1]:
            node = node.get(part, {})
        node.pop(path[-1], None)
    view["log_every"] = job.config.tracking.log_every
    view["record"] = list(job.metric_names)
    return json.dumps([view, job.dataset.digest()], sort_keys=True)


def group_jobs(jobs: Sequence[Job]) -> list[list[int]]:
    """Indices of ``jobs`` by group, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(group_key(job), []).append(index)
    return list(groups.values())


def split_to_fit(
    jobs: Sequence[Job], members: list[int], free: int | None = None
) -> list[list[int]]:
    """``members`` cut into runs of jobs whose batched arrays fit in half the free memory."""
    job = jobs[members[0]]
    data = job.dataset
    rows = max(len(data.X_train), len(data.X_test))
    per_copy = memory.training_bytes(
        rows, data.d, job.W1.shape[2], data.k, 1, job.hp.batch_size, job.W1.dtype.itemsize
    )
    budget = max(per_copy, (memory.available_bytes() if free is None else free) // 2)
    chunks: list[list[int]] = [[]]
    copies = 0
    for index in members:
        size = len(jobs[index].rngs)
        if chunks[-1] and (copies + size) * per_copy > budget:
            chunks.append([])
            copies = 0
        chunks[-1].append(index)
        copies += size
    return chunks


@dataclass
class Points:
    """The metrics recorded so far: epochs, and per metric name one (S,) row per recorded
    epoch."""

    epochs: list[int] = field(default_factory=list)
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, epoch: int, values: Mapping[str, np.ndarray]) -> None:
        """Keep one recorded epoch. Its epoch is appended last: a stop signal raised between the
        appends leaves a metric's rows at most one longer than ``epochs``, and a record counts
        only once its epoch is in (readers take the first ``len(epochs)`` rows)."""
        for name, row in values.items():
            self.values.setdefault(name, []).append(row)
        self.epochs.append(epoch)


@dataclass
class Slice:
    """One job's part of a group's training: its weights, its recorded costs (only the epochs
    its run alone records) and per copy the epoch it diverged at."""

    W1: np.ndarray
    W2: np.ndarray
    history: core.History
    diverged_at: list[int | None]

    @property
    def result(self) -> core.TrainResult:
        """As ``core.train`` returns it for the job alone."""
        return core.TrainResult(self.W1, self.W2, self.history, self.diverged_at)


def train_group(
    jobs: Sequence[Job], points: Points, on_record: Callable[[int], None] | None = None
) -> list[int | None]:
    """Train the jobs' copies as one batched computation, keeping the recorded costs in
    ``points`` (also when a signal stops it); ``on_record(epoch)`` after each record. The
    weights end in each job's W1, W2; returns per copy the epoch it diverged at (or None)."""
    first = jobs[0]
    dtype = first.W1.dtype
    data = first.dataset
    train_set = (data.X_train.astype(dtype), data.y_train.astype(dtype))
    test_set = (data.X_test.astype(dtype), data.y_test.astype(dtype))
    W1 = np.concatenate([job.W1 for job in jobs])
    W2 = np.concatenate([job.W2 for job in jobs])
    rngs = [rng for job in jobs for rng in job.rngs]
    hp = core.Hyperparams(
        lr=per_copy(jobs, lambda job: job.hp.lr),
        epochs=first.hp.epochs,
        l2=per_copy(jobs, lambda job: job.hp.l2),
        reduction=first.hp.reduction,
        batch_size=first.hp.batch_size,
        optimizer=first.hp.optimizer,
        options={
            key: per_copy(jobs, lambda job, key=key: job.hp.options[key])
            for key in first.hp.options
        },
    )

    def record(epoch: int, values: Mapping[str, np.ndarray]) -> None:
        points.add(epoch, values)
        if on_record is not None:
            on_record(epoch)

    try:
        with deterministic.training_threads(first.config.model.deterministic):
            result = core.train(
                W1,
                W2,
                train_set,
                test_set,
                hp,
                rngs,
                record_every=first.config.tracking.log_every,
                on_record=record,
                record=first.metric_names,
            )
    finally:
        start = 0
        for job in jobs:
            stop = start + len(job.rngs)
            job.W1[...] = W1[start:stop]
            job.W2[...] = W2[start:stop]
            start = stop
    return result.diverged_at


def per_copy(jobs: Sequence[Job], value: Callable[[Job], float]) -> float | np.ndarray:
    """One value per copy (each job's for its copies), or the one value all copies share."""
    values = np.concatenate([np.full(len(job.rngs), float(value(job))) for job in jobs])
    return float(values[0]) if (values == values[0]).all() else values


def slices(
    jobs: Sequence[Job], points: Points, diverged_at: Sequence[int | None] | None = None
) -> list[Slice]:
    """Each job's part of the group's recorded costs and final weights: a job all of whose
    copies diverged keeps the records up to the epoch its last copy stopped, as alone.
    Without ``diverged_at`` (training stopped early), a copy's first non-finite record."""
    epochs = np.asarray(points.epochs, dtype=int)
    values = {
        name: np.asarray(rows[: len(epochs)]).reshape(len(epochs), -1)
        for name, rows in points.values.items()
    }
    copies = sum(len(job.rngs) for job in jobs)
    train = values.get("train_cost", np.empty((0, copies)))
    parts, start = [], 0
    for job in jobs:
        stop = start + len(job.rngs)
        if diverged_at is not None:
            diverged = list(diverged_at[start:stop])
        else:
            finite = np.isfinite(train[:, start:stop])
            diverged = [
                None if finite[:, c].all() else int(epochs[np.argmin(finite[:, c])])
                for c in range(stop - start)
            ]
        keep = len(epochs)
        if all(epoch is not None for epoch in diverged):
            keep = int(np.searchsorted(epochs, max(diverged), side="right"))
        history = core.History(
            epochs=[int(e) for e in epochs[:keep]],
            values={name: list(rows[:keep, start:stop]) for name, rows in values.items()},
        )
        parts.append(Slice(job.W1, job.W2, history, diverged))
        start = stop
    return parts
