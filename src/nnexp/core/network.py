"""The Labor_07 network, fast: two weight matrices, no biases, sigmoid hidden and output layers.

The slides' equations in plain numpy, line by line, are ``nnexp.core.reference``: read that for
the math. This module computes the same values (tests/test_network.py checks it against them)::

    s2 = X W1                a2 = σ(s2)
    s3 = a2 W2               ŷ  = σ(s3)
    C  = r Σ ½ (y − ŷ)² + λ/2 (‖W1‖² + ‖W2‖²),      r = 1/N ("mean") or 1 ("sum")
    δ3 = −(y − ŷ) · σ'(s3)                          ∂C/∂W2 = r a2ᵀ δ3 + λ W2
    δ2 = δ3 W2ᵀ · σ'(s2)                            ∂C/∂W1 = r Xᵀ δ2 + λ W1
    σ(z) = 1 / (1 + e^(−z)),   σ'(z) = σ(z) (1 − σ(z))

Weights may carry a leading "copy" axis: ``W1`` of shape (S, d, h) and ``W2`` of shape (S, h, k)
hold S independently initialised networks that train on the same data in one batched computation.
Inputs are (N, d), shared by every copy, or (S, N, d) with one row set per copy.

The functions here work on row blocks small enough to stay in the
CPU cache and write into reusable buffers (``nnexp.core.workspace``), so an epoch allocates
nothing that grows with N, and on stripes of rows that run on all cores (``nnexp.core.parallel``).
Every elementwise step is an in-place ufunc on a block: the hidden layer costs one exponential,
one reciprocal and four cheap passes per element; everything else is matrix products.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnexp.core.parallel import map_tasks, single_threaded_blas
from nnexp.core.workspace import Array, Blocks, Buffers, Pair, Workspace

#: A hyperparameter: one float for every copy, or a float64 array of shape (S,), one per copy.
PerCopy = float | Array


def sigmoid(z: Array, out: Array | None = None) -> Array:
    """σ(z) = 1 / (1 + e^(−z)), exact 0 and 1 in the limits and silent for any |z|.

    e^(−z) overflows to +inf for z < −709; 1 / (1 + inf) is then exactly 0, so the overflow is
    harmless and its warning is suppressed. One exponential per element.
    """
    out = np.negative(z, out=out)
    with np.errstate(over="ignore"):
        return _sigmoid_of_negated(out)


def _sigmoid_of_negated(neg_z: Array) -> Array:
    """σ(z) in place of −z: 1 / (1 + e^(−z)). An overflow to inf gives exactly 0; callers
    silence its warning."""
    np.exp(neg_z, out=neg_z)
    neg_z += 1.0
    return np.reciprocal(neg_z, out=neg_z)


def reduction_factor(reduction: str, n_rows: int) -> float:
    """r in C = r Σ ½(y − ŷ)²: 1/N for "mean", 1 for "sum" (the slide's literal form)."""
    if reduction == "mean":
        return 1.0 / n_rows
    if reduction == "sum":
        return 1.0
    raise ValueError(f"unknown cost reduction {reduction!r}; use 'mean' or 'sum'")


def forward(X: Array, W1: Array, W2: Array) -> Array:
    """ŷ = σ(σ(X W1) W2), the network's prediction (allocates; for small inputs and serving)."""
    return sigmoid(np.matmul(sigmoid(np.matmul(X, W1)), W2))


def _sum_squares(A: Array) -> Array:
    """Σ A² over the last two axes, for each index of the leading ones, in float64."""
    flat = A.reshape(*A.shape[:-2], -1)
    return np.vecdot(flat, flat, dtype=np.float64)


def _total_cost(squared_errors: Array, weights: Array, lam: PerCopy, r: float) -> Array:
    """C = r/2 Σ (y − ŷ)² + λ/2 (‖W1‖² + ‖W2‖²) from Σ (y − ŷ)² and the flat (S, P) weights,
    λ a float or one float64 value per copy. The norms are added even for λ = 0: when weights
    blow up, ‖W‖² overflows and C turns NaN, which marks the copy diverged."""
    total = np.multiply(squared_errors, 0.5 * r)
    total += np.multiply(np.vecdot(weights, weights, dtype=np.float64), 0.5 * lam)
    return total


def _in_order_sum(parts: list[Array]) -> Array:
    """parts[0] + parts[1] + … (left to right, into parts[0])."""
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total


def _forward_block(Xb: Array, neg_W1: Array, W2: Array, a2: Array, yhat: Array) -> None:
    """a2 = σ(s2) and ŷ = σ(s3) of one block, in place. s2 is formed negated, X (−W1) = −s2,
    which spares σ its negation pass; negation is exact, so the result is bit for bit the same."""
    _sigmoid_of_negated(np.matmul(Xb, neg_W1, out=a2))  # a2 = σ(s2), −s2 = X (−W1)
    np.matmul(a2, W2, out=yhat)  # s3 = a2 W2
    _sigmoid_of_negated(np.negative(yhat, out=yhat))  # ŷ = σ(s3)


#: What a forward pass sums over the rows: (y rows, a2, ŷ) of a block → (S,) float64 sums per copy.
#: It may overwrite a2 and ŷ.
BlockSum = Callable[[Array, Array, Array], Array]


def squared_errors(yb: Array, a2: Array, yhat: Array) -> Array:
    """Σ (y − ŷ)² per copy over a block's rows (overwrites ŷ)."""
    return _sum_squares(np.subtract(yb, yhat, out=yhat))


def _stripe_sums(
    X: Array, y: Array, neg_W1: Array, W2: Array, blocks: Blocks, buffers: Buffers, f: BlockSum
) -> Array:
    """Σ f(y, a2, ŷ) per copy over one stripe's blocks, in order: the forward pass alone."""
    sums = []
    for Xb, yb, a2, _, yhat, _ in buffers.blocks(X, y, blocks):
        _forward_block(Xb, neg_W1, W2, a2, yhat)
        sums.append(f(yb, a2, yhat))
    return _in_order_sum(sums)


def _backprop_block(
    Xb: Array,
    yb: Array,
    neg_W1: Array,
    W2: Array,
    a2: Array,
    delta2: Array,
    yhat: Array,
    delta3: Array,
    out: Pair,
) -> Array:
    """One block, in place of its buffers: Σ (y − ŷ)² per copy is returned, Xᵀ δ2 and a2ᵀ δ3
    are written to ``out``."""
    _forward_block(Xb, neg_W1, W2, a2, yhat)
    errors = _sum_squares(np.subtract(yhat, yb, out=delta3))  # delta3 = −(y − ŷ)
    delta3 *= yhat
    delta3 *= np.subtract(1.0, yhat, out=yhat)  # δ3 = −(y − ŷ) σ'(s3), σ'(s3) = ŷ(1 − ŷ)
    np.matmul(a2.swapaxes(-1, -2), delta3, out=out.W2)  # a2ᵀ δ3
    np.matmul(delta3, W2.swapaxes(-1, -2), out=delta2)  # δ3 W2ᵀ
    delta2 *= a2
    delta2 *= np.subtract(1.0, a2, out=a2)  # δ2 = δ3 W2ᵀ σ'(s2), σ'(s2) = a2(1 − a2)
    np.matmul(Xb.swapaxes(-1, -2), delta2, out=out.W1)  # Xᵀ δ2
    return errors


def _stripe_backprop(
    X: Array, y: Array, neg_W1: Array, W2: Array, blocks: Blocks, buffers: Buffers, sums: Pair
) -> Array:
    """Σ (y − ŷ)² per copy over one stripe's blocks, and Σ Xᵀ δ2, Σ a2ᵀ δ3 into ``sums``: the
    first block's products straight in, later ones through the buffers' ``part``."""
    errors = []
    for block, (Xb, yb, *views) in enumerate(buffers.blocks(X, y, blocks)):
        errors.append(_backprop_block(Xb, yb, neg_W1, W2, *views, buffers.part if block else sums))
        if block:
            np.add(sums.flat, buffers.part.flat, out=sums.flat)
    return _in_order_sum(errors)


#: A task: (stripe, its copies, its blocks, buffers for those copies) → its sums for the copies.
TaskPass = Callable[[int, slice, Blocks, Buffers], Array]


def _over_tasks(task_pass: TaskPass, plan: list[Blocks], ws: Workspace) -> Array:
    """Σ per copy of the tasks' sums over the stripes, in order, each (stripe, chunk of copies)
    a task of ``task_pass``: directly for a single task, else on the worker threads."""
    tasks = [(stripe, copies) for stripe in range(len(plan)) for copies in ws.chunks]

    def run(task: int, buffers: Buffers) -> Array:
        stripe, copies = tasks[task]
        return task_pass(stripe, copies, plan[stripe], buffers.cut(copies.stop - copies.start))

    if len(tasks) == 1:
        return run(0, ws.buffers[0])
    errors = np.empty((len(plan), ws.chunks[-1].stop))
    for (stripe, copies), part in zip(tasks, map_tasks(run, len(tasks), ws.buffers), strict=True):
        errors[stripe, copies] = part
    return _in_order_sum(list(errors))


def _of_copies(A: Array, copies: slice) -> Array:
    """Inputs or targets for the copies in ``copies``: all of A when shared (N, ·), else theirs."""
    return A[copies] if A.ndim == 3 else A


def raw_forward_sums(X: Array, y: Array, W1: Array, W2: Array, ws: Workspace, f: BlockSum) -> Array:
    """Σ over the rows of f(y, a2, ŷ) per copy, block by block in the workspace's order, for a
    caller that silences floating-point overflow itself."""
    neg_W1 = np.negative(W1, out=ws.neg_W1)
    plan = ws.stripes(X.shape[-2])
    with single_threaded_blas(len(plan)):

        def task_pass(_: int, copies: slice, blocks: Blocks, buffers: Buffers) -> Array:
            Xc, yc = _of_copies(X, copies), _of_copies(y, copies)
            return _stripe_sums(Xc, yc, neg_W1[copies], W2[copies], blocks, buffers, f)

        return _over_tasks(task_pass, plan, ws)


def raw_cost(
    X: Array, y: Array, W1: Array, W2: Array, lam: PerCopy, r: float, ws: Workspace
) -> Array:
    """``cost`` for a caller that silences floating-point overflow itself (the training loop,
    once for all epochs): e^(−z) overflowing to inf is harmless in σ but warns."""
    weights = ws.flat_weights(W1, W2)
    return _total_cost(raw_forward_sums(X, y, W1, W2, ws, squared_errors), weights, lam, r)


def cost(X: Array, y: Array, W1: Array, W2: Array, lam: PerCopy, r: float, ws: Workspace) -> Array:
    """C = r Σ ½ (y − ŷ)² + λ/2 (‖W1‖² + ‖W2‖²) for each copy, λ a float or one per copy."""
    with np.errstate(over="ignore"):
        return raw_cost(X, y, W1, W2, lam, r, ws)


def raw_cost_and_gradients(
    X: Array, y: Array, W1: Array, W2: Array, lam: PerCopy, r: float, ws: Workspace
) -> tuple[Array, Array, Array]:
    """``cost_and_gradients`` for a caller that silences floating-point overflow itself."""
    weights = ws.flat_weights(W1, W2)
    neg_W1 = np.negative(W1, out=ws.neg_W1)
    plan = ws.stripes(X.shape[-2])
    grad = ws.grads[0].flat
    with single_threaded_blas(len(plan)):

        def task_pass(stripe: int, copies: slice, blocks: Blocks, buffers: Buffers) -> Array:
            Xc, yc, sums = _of_copies(X, copies), _of_copies(y, copies), ws.grads[stripe]
            return _stripe_backprop(
                Xc, yc, neg_W1[copies], W2[copies], blocks, buffers, sums.copies(copies)
            )

        squared_errors = _over_tasks(task_pass, plan, ws)
        for stripe in ws.grads[1 : len(plan)]:
            grad += stripe.flat
        if r != 1.0:
            grad *= r  # r Σ …
        _add_decay(grad, weights, lam, ws.decay)  # + λ W
        return _total_cost(squared_errors, weights, lam, r), ws.gW1, ws.gW2


def _add_decay(grad: Array, weights: Array, lam: PerCopy, scratch: Array) -> None:
    """grad += λ W on flat (S, P) arrays, λ a float or one value per copy (S,), in the weights'
    dtype; copies with λ = 0 are left untouched, bit for bit as when the term is skipped."""
    if not isinstance(lam, np.ndarray):
        if lam:
            grad += np.multiply(weights, lam, out=scratch)
        return
    decayed = lam != 0
    if decayed.any():
        np.multiply(weights, lam.astype(grad.dtype)[:, None], out=scratch)
        np.add(grad, scratch, out=grad, where=True if decayed.all() else decayed[:, None])


def cost_and_gradients(
    X: Array, y: Array, W1: Array, W2: Array, lam: PerCopy, r: float, ws: Workspace
) -> tuple[Array, Array, Array]:
    """C, ∂C/∂W1 and ∂C/∂W2 for each copy, by the slides' backpropagation.

    The gradients are written into ``ws.gW1`` and ``ws.gW2`` and returned as those buffers. Each
    stripe sums Xᵀ δ2 and a2ᵀ δ3 over its blocks, in order, into its own pair of ``ws.grads``;
    the stripes' sums are added in order into stripe 0's, the gradients, which r and λ W finish
    (λ a float, or an (S,) float64 array with each copy's own λ).
    """
    with np.errstate(over="ignore"):
        return raw_cost_and_gradients(X, y, W1, W2, lam, r, ws)
