"""Initialisation and the training loop: an optimizer's step (``nnexp.core.optimizers``; by
default W ← W − lr ∂C/∂W), epoch by epoch.

Every random draw comes from the ``numpy.random.Generator`` of the copy it belongs to, so copy i
of a batched run equals a separate run whose generator was seeded the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from nnexp.core import metrics
from nnexp.core.network import PerCopy, raw_cost, raw_cost_and_gradients, reduction_factor
from nnexp.core.optimizers import Optimizer, make_optimizer
from nnexp.core.workspace import Array, Pair, Workspace

INIT_SCHEMES = ("normal", "xavier")


def init_weights(
    d: int, hidden: int, k: int, scheme: str, rngs: Sequence[np.random.Generator], dtype=np.float64
) -> tuple[Array, Array]:
    """W1 (S, d, h) and W2 (S, h, k), one copy per generator, each drawing W1 then W2.

    ``normal``: every weight ~ N(0, 1), like the lecture's ``np.random.randn``.
    ``xavier``: Glorot uniform, U(−b, b) with b = √(6 / (fan_in + fan_out)).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; use one of {INIT_SCHEMES}")
    W1 = np.empty((len(rngs), d, hidden), dtype)
    W2 = np.empty((len(rngs), hidden, k), dtype)
    for copy, rng in enumerate(rngs):
        for W in (W1, W2):
            fan_in, fan_out = W.shape[1:]
            if scheme == "normal":
                W[copy] = rng.standard_normal((fan_in, fan_out))
            else:
                bound = np.sqrt(6.0 / (fan_in + fan_out))
                W[copy] = rng.uniform(-bound, bound, (fan_in, fan_out))
    return W1, W2


@dataclass(frozen=True)
class Hyperparams:
    """What the update needs: learning rate, epochs, λ, reduction, mini-batch size, and the
    optimizer (a name of ``nnexp.core.optimizers.OPTIMIZERS``) with its options (``momentum``).

    ``lr``, ``l2`` and each option are a float, the same for every copy, or a sequence of S
    values, one per copy (stored as a read-only float64 array of shape (S,)); copy i then trains
    exactly, bit for bit, as it would alone with the floats ``lr[i]``, ``l2[i]`` ….
    """

    lr: PerCopy
    epochs: int
    l2: PerCopy = 0.0
    reduction: str = "mean"
    batch_size: int | None = None
    optimizer: str = "gd"
    options: Mapping[str, PerCopy] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _per_copy("lr", self.lr))
        object.__setattr__(self, "l2", _per_copy("l2", self.l2))
        options = {key: _per_copy(key, value) for key, value in self.options.items()}
        object.__setattr__(self, "options", options)

    def check_copies(self, copies: int) -> None:
        """Raise ValueError unless every per-copy array has one value per copy."""
        for name, value in {"lr": self.lr, "l2": self.l2, **self.options}.items():
            if isinstance(value, np.ndarray) and value.shape != (copies,):
                raise ValueError(
                    f"Hyperparams.{name} has {value.shape[0]} values for {copies} copies; "
                    "give one value per copy or a single float"
                )


def _per_copy(name: str, value: PerCopy) -> PerCopy:
    """A float as a float; anything array-like as a read-only float64 array of shape (S,)."""
    if np.ndim(value) == 0:
        return float(value)
    array = np.array(value, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"Hyperparams.{name} must be a float or one value per copy, shape (S,)")
    array.flags.writeable = False
    return array


def _column(value: PerCopy, dtype: np.dtype) -> PerCopy:
    """A per-copy array as an (S, 1) column in ``dtype`` to scale flat (S, P) rows, as a float
    would be (numpy computes ``float32 array × float`` in float32); a float as is."""
    if not isinstance(value, np.ndarray):
        return value
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, as a float would
        return value.astype(dtype)[:, None]


@dataclass
class History:
    """The metrics at the recorded epochs: name → one (S,) row per recorded epoch, one column
    per copy, NaN once the copy diverged (names and order: ``nnexp.core.metrics``)."""

    epochs: list[int] = field(default_factory=list)
    values: dict[str, list[Array]] = field(
        default_factory=lambda: {"train_cost": [], "test_cost": []}
    )

    @property
    def train_cost(self) -> list[Array]:
        """The train_cost rows."""
        return self.values["train_cost"]

    @property
    def test_cost(self) -> list[Array]:
        """The test_cost rows."""
        return self.values["test_cost"]

    def metric(self, name: str) -> Array:
        """The metric ``name`` as an (R, S) array."""
        return np.asarray(self.values[name])

    def as_arrays(self) -> tuple[Array, Array, Array]:
        """(epochs (R,), train_cost (R, S), test_cost (R, S))."""
        return np.asarray(self.epochs), self.metric("train_cost"), self.metric("test_cost")

    def summaries(self) -> dict[str, Array]:
        """Per copy, for each metric with a best: ``best_NAME`` and ``best_NAME_epoch`` (the
        first recorded epoch that reached it): the least cost, the highest accuracy."""
        found: dict[str, Array] = {}
        for name in self.values:
            summary = metrics.best(name, self.metric(name), np.asarray(self.epochs))
            if summary is not None:
                found[f"best_{name}"], found[f"best_{name}_epoch"] = summary
        return found


@dataclass
class TrainResult:
    """Final weights, the cost history, and per copy the first epoch whose cost was not finite."""

    W1: Array
    W2: Array
    history: History
    diverged_at: list[int | None]


#: Called at every recorded epoch with (epoch, metric name → values (S,)).
RecordHook = Callable[[int, Mapping[str, Array]], None]


def train(
    W1: Array,
    W2: Array,
    train_set: tuple[Array, Array],
    test_set: tuple[Array, Array] | None,
    hp: Hyperparams,
    rngs: Sequence[np.random.Generator],
    record_every: int = 1,
    on_record: RecordHook | None = None,
    record: Sequence[str] = ("train_cost", "test_cost"),
) -> TrainResult:
    """Train the S copies in (W1, W2) in place for ``hp.epochs`` epochs.

    The metrics named in ``record`` (``nnexp.core.metrics.metric_names``; the costs always) are
    recorded at epoch 0 (the initial weights), every ``record_every`` epochs and at the last
    epoch; the test cost and the other metrics are computed only then. Full batch
    (``batch_size`` None) takes one step per epoch on all rows, and the pass that computes the
    gradient also gives C(W). With mini-batches each copy shuffles the rows with its own
    generator every epoch and steps on each batch, r applying to the batch. A copy whose cost
    is not finite is frozen from that epoch on; training stops when every copy is frozen.
    """
    X, y = train_set
    n_rows, copies = X.shape[0], W1.shape[0]
    hp.check_copies(copies)
    batch = hp.batch_size if hp.batch_size is not None and hp.batch_size < n_rows else None
    ws = Workspace.for_shapes(W1, W2, batch or n_rows)
    test_cost = _test_cost(test_set, W1, W2, hp)
    history, live = History(), _Copies(copies)
    probe = _prober(record, train_set, test_set, hp, history)
    dtype = W1.dtype
    options = {key: _column(value, dtype) for key, value in hp.options.items()}
    optimizer = make_optimizer(hp.optimizer, ws.weights.flat, _column(hp.lr, dtype), options)

    def recorded(epoch: int) -> bool:
        return epoch == hp.epochs or epoch % record_every == 0

    epochs = _full_batch if batch is None else _mini_batches
    # Train the workspace's flat copy of the weights (one ufunc call per step covers W1 and W2)
    # and copy it back into W1 and W2 at the end, however training ends.
    ws.flat_weights(W1, W2)
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            steps = epochs(X, y, hp, batch, rngs, ws, live, recorded, optimizer)
            for epoch, train_cost in steps:
                history.epochs.append(epoch)
                row = {"train_cost": train_cost, "test_cost": test_cost(ws.weights)}
                row |= probe(ws.weights)
                for name, values in row.items():
                    history.values[name].append(live.masked(values))
                if on_record is not None:
                    on_record(epoch, {name: rows[-1] for name, rows in history.values.items()})
        finally:
            np.copyto(W1, ws.weights.W1)
            np.copyto(W2, ws.weights.W2)
    return TrainResult(W1=W1, W2=W2, history=history, diverged_at=live.diverged_at)


def _prober(
    record: Sequence[str],
    train_set: tuple[Array, Array],
    test_set: tuple[Array, Array] | None,
    hp: Hyperparams,
    history: History,
) -> Callable[[Pair], dict[str, Array]]:
    """The metrics of ``record`` besides the costs, as a function of the weights at a recorded
    epoch; adds their empty rows to ``history``. One scratch workspace serves every epoch."""
    unknown = [name for name in record if name not in metrics.METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; use names of {list(metrics.METRICS)}")
    extra = [name for name in record if metrics.METRICS[name].compute is not None]
    for name in extra:
        history.values[name] = []
    r = reduction_factor(hp.reduction, len(train_set[0]))
    scratch: list[Workspace] = []

    def probe(weights: Pair) -> dict[str, Array]:
        if not extra:
            return {}
        state = metrics.Probe(weights, train_set, test_set, hp.l2, r, scratch)
        return {name: metrics.METRICS[name].compute(state) for name in extra}

    return probe


class _Copies:
    """Which copies still train, and the epoch at which each one stopped."""

    def __init__(self, copies: int):
        self.live = np.ones(copies, bool)
        self.diverged_at: list[int | None] = [None] * copies
        self.all_live = True

    def freeze(self, finite: Array, epoch: int) -> None:
        """Stop the live copies whose cost is not ``finite``, as diverged at ``epoch``."""
        if finite.all():
            return
        for copy in np.flatnonzero(self.live & ~finite):
            self.live[copy] = False
            self.diverged_at[copy] = epoch
        self.all_live = bool(self.live.all())

    @property
    def any_live(self) -> bool:
        """Whether any copy still trains."""
        return self.all_live or bool(self.live.any())

    @property
    def where(self) -> Array | bool:
        """The update's mask: True for all copies, else (S, 1) of the live ones."""
        return True if self.all_live else self.live[:, None]

    def masked(self, costs: Array) -> Array:
        """The costs (a fresh array from the kernel), NaN for copies no longer live."""
        return costs if self.all_live else np.where(self.live, costs, np.nan)


def _test_cost(
    test_set: tuple[Array, Array] | None, W1: Array, W2: Array, hp: Hyperparams
) -> Callable[[Pair], Array]:
    """C on the test split for the given weights; NaN for every copy without one."""
    if test_set is None:
        nothing = np.full(W1.shape[0], np.nan)
        nothing.flags.writeable = False
        return lambda weights: nothing
    X, y = test_set
    ws = Workspace.for_shapes(W1, W2, X.shape[0])
    r = reduction_factor(hp.reduction, X.shape[0])
    return lambda weights: raw_cost(X, y, weights.W1, weights.W2, hp.l2, r, ws)


#: Yields (epoch, train cost) at the recorded epochs, stepping the workspace's weights between.
Epochs = Iterator[tuple[int, Array]]


def _full_batch(
    X, y, hp: Hyperparams, batch, rngs, ws: Workspace, live: _Copies, recorded, optimizer
) -> Epochs:
    """Each epoch one pass over all rows gives C(W) and ∂C/∂W; then the optimizer steps the live
    copies (the last epoch only measures C)."""
    r = reduction_factor(hp.reduction, X.shape[0])
    V1, V2 = ws.weights.W1, ws.weights.W2
    for epoch in range(hp.epochs + 1):
        if epoch == hp.epochs:
            train_cost = raw_cost(X, y, V1, V2, hp.l2, r, ws)
        else:
            train_cost, _, _ = raw_cost_and_gradients(X, y, V1, V2, hp.l2, r, ws)
        live.freeze(np.isfinite(train_cost), epoch)
        if recorded(epoch):
            yield epoch, train_cost
        if epoch == hp.epochs or not live.any_live:
            return
        optimizer.step(ws.weights.flat, ws.grads[0].flat, live.where)


def _mini_batches(
    X, y, hp: Hyperparams, batch: int, rngs, ws: Workspace, live: _Copies, recorded, optimizer
) -> Epochs:
    """Each epoch every copy shuffles the rows with its own generator and steps on each batch;
    C on all rows is computed only at the recorded epochs."""
    r = reduction_factor(hp.reduction, X.shape[0])
    for epoch in range(hp.epochs + 1):
        if recorded(epoch):
            train_cost = raw_cost(X, y, ws.weights.W1, ws.weights.W2, hp.l2, r, ws)
            live.freeze(np.isfinite(train_cost), epoch)
            yield epoch, train_cost
        if epoch == hp.epochs or not live.any_live:
            return
        finite = _minibatch_epoch(X, y, hp, batch, rngs, ws, live.live, optimizer)
        live.freeze(finite, epoch + 1)


def _minibatch_epoch(
    X, y, hp: Hyperparams, batch: int, rngs, ws: Workspace, live, optimizer: Optimizer
) -> Array:
    """One epoch of mini-batch steps on the workspace's weights; returns which copies kept a
    finite batch cost throughout."""
    n_rows = X.shape[0]
    order = np.stack([rng.permutation(n_rows) for rng in rngs])
    finite = np.ones(live.shape[0], bool)
    V1, V2 = ws.weights.W1, ws.weights.W2
    for start in range(0, n_rows, batch):
        rows = order[:, start : start + batch]
        r = reduction_factor(hp.reduction, rows.shape[1])
        c, _, _ = raw_cost_and_gradients(X[rows], y[rows], V1, V2, hp.l2, r, ws)
        finite &= np.isfinite(c)
        optimizer.step(ws.weights.flat, ws.grads[0].flat, (live & finite)[:, None])
    return finite
