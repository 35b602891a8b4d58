"""Initialisation and the gradient-descent loop: W ← W − lr ∂C/∂W, epoch by epoch.

Every random draw comes from the ``numpy.random.Generator`` of the copy it belongs to, so copy i
of a batched run equals a separate run whose generator was seeded the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nnexp.core.network import Array, Workspace, reduction_factor

# The loop silences floating-point overflow once for all epochs, so it calls the kernel's forms
# that leave that to the caller.
from nnexp.core.network import _cost as cost
from nnexp.core.network import _cost_and_gradients as cost_and_gradients

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
    """What the update needs: learning rate, epochs, λ, reduction and mini-batch size."""

    lr: float
    epochs: int
    l2: float = 0.0
    reduction: str = "mean"
    batch_size: int | None = None


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
    batch = hp.batch_size if hp.batch_size is not None and hp.batch_size < n_rows else None
    ws = Workspace.for_shapes(W1, W2, batch or n_rows)
    r = reduction_factor(hp.reduction, n_rows)
    if test_set is not None:
        test_ws = Workspace.for_shapes(W1, W2, test_set[0].shape[0])
        test_r = reduction_factor(hp.reduction, test_set[0].shape[0])
    history = History()
    diverged_at: list[int | None] = [None] * copies
    live = np.ones(copies, bool)
    all_live = True
    no_test_cost = np.full(copies, np.nan)
    no_test_cost.flags.writeable = False
    # Train the workspace's flat copy of the weights (one ufunc call per step covers W1 and W2)
    # and copy it back into W1 and W2 at the end, however training ends.
    ws.flat_weights(W1, W2)
    V1, V2, weights, grad = ws.weights.W1, ws.weights.W2, ws.weights.flat, ws.grads[0].flat

    with np.errstate(over="ignore", invalid="ignore"):
        try:
            for epoch in range(hp.epochs + 1):
                last = epoch == hp.epochs
                recorded = last or epoch % record_every == 0
                if batch is None and not last:
                    train_cost, _, _ = cost_and_gradients(X, y, V1, V2, hp.l2, r, ws)
                elif batch is None or recorded:
                    train_cost = cost(X, y, V1, V2, hp.l2, r, ws)
                if (batch is None or recorded) and not np.isfinite(train_cost).all():
                    all_live = _freeze(~np.isfinite(train_cost), live, diverged_at, epoch)
                if recorded:
                    test_cost = (
                        cost(*test_set, V1, V2, hp.l2, test_r, test_ws)
                        if test_set is not None
                        else no_test_cost
                    )
                    history.epochs.append(epoch)
                    history.train_cost.append(_masked(train_cost, live, all_live))
                    history.test_cost.append(_masked(test_cost, live, all_live))
                    if on_record is not None:
                        on_record(epoch, history.train_cost[-1], history.test_cost[-1])
                if last or not (all_live or live.any()):
                    break
                if batch is None:
                    _descend(weights, grad, hp.lr, True if all_live else live[:, None])
                else:
                    finite = _minibatch_epoch(X, y, hp, batch, rngs, ws, live)
                    all_live = _freeze(~finite, live, diverged_at, epoch + 1)
        finally:
            np.copyto(W1, V1)
            np.copyto(W2, V2)
    return TrainResult(W1=W1, W2=W2, history=history, diverged_at=diverged_at)


def _minibatch_epoch(X, y, hp: Hyperparams, batch: int, rngs, ws: Workspace, live) -> Array:
    """One epoch of mini-batch steps on the workspace's weights; returns which copies kept a
    finite batch cost throughout."""
    n_rows = X.shape[0]
    order = np.stack([rng.permutation(n_rows) for rng in rngs])
    finite = np.ones(live.shape[0], bool)
    V1, V2 = ws.weights.W1, ws.weights.W2
    for start in range(0, n_rows, batch):
        rows = order[:, start : start + batch]
        r = reduction_factor(hp.reduction, rows.shape[1])
        c, _, _ = cost_and_gradients(X[rows], y[rows], V1, V2, hp.l2, r, ws)
        finite &= np.isfinite(c)
        _descend(ws.weights.flat, ws.grads[0].flat, hp.lr, (live & finite)[:, None])
    return finite


def _masked(costs: Array, live: Array, all_live: bool) -> Array:
    """The costs (a fresh array from the kernel), NaN for copies no longer live."""
    return costs if all_live else np.where(live, costs, np.nan)


def _freeze(bad: Array, live: Array, diverged_at: list[int | None], epoch: int) -> bool:
    """Mark live copies with ``bad`` set as diverged at ``epoch``; return whether all still live."""
    for copy in np.flatnonzero(live & bad):
        live[copy] = False
        diverged_at[copy] = epoch
    return bool(live.all())


def _descend(weights: Array, grad: Array, lr: float, where: Array | bool) -> None:
    """W ← W − lr ∂C/∂W on flat (S, P) weights and gradients, for the copies selected by
    ``where`` ((S, 1) mask, or True for all); scales the gradient buffer in place."""
    np.multiply(grad, lr, out=grad)
    np.subtract(weights, grad, out=weights, where=where)
