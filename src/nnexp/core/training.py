"""Initialisation and the gradient-descent loop: W ← W − lr ∂C/∂W, epoch by epoch.

Every random draw comes from the ``numpy.random.Generator`` of the copy it belongs to, so copy i
of a batched run equals a separate run whose generator was seeded the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from nnexp.core.network import PerCopy, raw_cost, raw_cost_and_gradients, reduction_factor
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
    """What the update needs: learning rate, epochs, λ, reduction and mini-batch size.

    ``lr`` and ``l2`` are each a float, the same for every copy, or a sequence of S values, one
    per copy (stored as a read-only float64 array of shape (S,)); copy i then trains exactly, bit
    for bit, as it would alone with the floats ``lr[i]`` and ``l2[i]``.
    """

    lr: PerCopy
    epochs: int
    l2: PerCopy = 0.0
    reduction: str = "mean"
    batch_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _per_copy("lr", self.lr))
        object.__setattr__(self, "l2", _per_copy("l2", self.l2))

    def check_copies(self, copies: int) -> None:
        """Raise ValueError unless every per-copy array has one value per copy."""
        for name in ("lr", "l2"):
            value = getattr(self, name)
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
    return value.astype(dtype)[:, None] if isinstance(value, np.ndarray) else value


@dataclass
class History:
    """Costs at the recorded epochs: one row per epoch, one column per copy, NaN once diverged."""

    epochs: list[int] = field(default_factory=list)
    train_cost: list[Array] = field(default_factory=list)
    test_cost: list[Array] = field(default_factory=list)

    def as_arrays(self) -> tuple[Array, Array, Array]:
        """(epochs (R,), train_cost (R, S), test_cost (R, S))."""
        return np.asarray(self.epochs), np.asarray(self.train_cost), np.asarray(self.test_cost)


@dataclass
class TrainResult:
    """Final weights, the cost history, and per copy the first epoch whose cost was not finite."""

    W1: Array
    W2: Array
    history: History
    diverged_at: list[int | None]


#: Called at every recorded epoch with (epoch, train_cost (S,), test_cost (S,)).
RecordHook = Callable[[int, Array, Array], None]


def train(
    W1: Array,
    W2: Array,
    train_set: tuple[Array, Array],
    test_set: tuple[Array, Array] | None,
    hp: Hyperparams,
    rngs: Sequence[np.random.Generator],
    record_every: int = 1,
    on_record: RecordHook | None = None,
) -> TrainResult:
    """Train the S copies in (W1, W2) in place for ``hp.epochs`` epochs.

    Costs are recorded at epoch 0 (the initial weights), every ``record_every`` epochs and at the
    last epoch; the test cost is computed only then. Full batch (``batch_size`` None) takes one
    step per epoch on all rows, and the pass that computes the gradient also gives C(W). With
    mini-batches each copy shuffles the rows with its own generator every epoch and steps on each
    batch, r applying to the batch. A copy whose cost is not finite is frozen from that epoch on;
    training stops when every copy is frozen.
    """
    X, y = train_set
    n_rows, copies = X.shape[0], W1.shape[0]
    hp.check_copies(copies)
    batch = hp.batch_size if hp.batch_size is not None and hp.batch_size < n_rows else None
    ws = Workspace.for_shapes(W1, W2, batch or n_rows)
    test_cost = _test_cost(test_set, W1, W2, hp)
    history, live = History(), _Copies(copies)

    def recorded(epoch: int) -> bool:
        return epoch == hp.epochs or epoch % record_every == 0

    epochs = _full_batch if batch is None else _mini_batches
    # Train the workspace's flat copy of the weights (one ufunc call per step covers W1 and W2)
    # and copy it back into W1 and W2 at the end, however training ends.
    ws.flat_weights(W1, W2)
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            for epoch, train_cost in epochs(X, y, hp, batch, rngs, ws, live, recorded):
                history.epochs.append(epoch)
                history.train_cost.append(live.masked(train_cost))
                history.test_cost.append(live.masked(test_cost(ws.weights)))
                if on_record is not None:
                    on_record(epoch, history.train_cost[-1], history.test_cost[-1])
        finally:
            np.copyto(W1, ws.weights.W1)
            np.copyto(W2, ws.weights.W2)
    return TrainResult(W1=W1, W2=W2, history=history, diverged_at=live.diverged_at)


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
    X, y, hp: Hyperparams, batch, rngs, ws: Workspace, live: _Copies, recorded
) -> Epochs:
    """Each epoch one pass over all rows gives C(W) and ∂C/∂W; then W ← W − lr ∂C/∂W for the
    live copies (the last epoch only measures C)."""
    r = reduction_factor(hp.reduction, X.shape[0])
    V1, V2 = ws.weights.W1, ws.weights.W2
    lr = _column(hp.lr, V1.dtype)
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
        _descend(ws.weights.flat, ws.grads[0].flat, lr, live.where)


def _mini_batches(
    X, y, hp: Hyperparams, batch: int, rngs, ws: Workspace, live: _Copies, recorded
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
        live.freeze(_minibatch_epoch(X, y, hp, batch, rngs, ws, live.live), epoch + 1)


def _minibatch_epoch(X, y, hp: Hyperparams, batch: int, rngs, ws: Workspace, live) -> Array:
    """One epoch of mini-batch steps on the workspace's weights; returns which copies kept a
    finite batch cost throughout."""
    n_rows = X.shape[0]
    order = np.stack([rng.permutation(n_rows) for rng in rngs])
    finite = np.ones(live.shape[0], bool)
    V1, V2 = ws.weights.W1, ws.weights.W2
    lr = _column(hp.lr, V1.dtype)
    for start in range(0, n_rows, batch):
        rows = order[:, start : start + batch]
        r = reduction_factor(hp.reduction, rows.shape[1])
        c, _, _ = raw_cost_and_gradients(X[rows], y[rows], V1, V2, hp.l2, r, ws)
        finite &= np.isfinite(c)
        _descend(ws.weights.flat, ws.grads[0].flat, lr, (live & finite)[:, None])
    return finite


def _descend(weights: Array, grad: Array, lr: PerCopy, where: Array | bool) -> None:
    """W ← W − lr ∂C/∂W on flat (S, P) weights and gradients, for the copies selected by
    ``where`` ((S, 1) mask, or True for all), lr a float or an (S, 1) column in the weights'
    dtype; scales the gradient buffer in place."""
    np.multiply(grad, lr, out=grad)
    np.subtract(weights, grad, out=weights, where=where)
