"""The Labor_07 network: two weight matrices, no biases, sigmoid hidden and output layers.

Forward, cost and backpropagation exactly as on the slides::

    s2 = X W1                a2 = σ(s2)
    s3 = a2 W2               ŷ  = σ(s3)
    C  = r Σ ½ (y − ŷ)² + λ/2 (‖W1‖² + ‖W2‖²),      r = 1/N ("mean") or 1 ("sum")
    δ3 = −(y − ŷ) · σ'(s3)                          ∂C/∂W2 = r a2ᵀ δ3 + λ W2
    δ2 = δ3 W2ᵀ · σ'(s2)                            ∂C/∂W1 = r Xᵀ δ2 + λ W1
    σ(z) = 1 / (1 + e^(−z)),   σ'(z) = σ(z) (1 − σ(z))

Weights may carry a leading "copy" axis: ``W1`` of shape (S, d, h) and ``W2`` of shape (S, h, k)
hold S independently initialised networks that train on the same data in one batched computation.
Inputs are (N, d), shared by every copy, or (S, N, d) with one row set per copy.

The functions here are the whole of the math. They work on row blocks small enough to stay in the
CPU cache and write into reusable buffers, so an epoch allocates nothing that grows with N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray

#: Bytes of hidden activations processed per row block (per copy and layer): fits in L2/L3 cache.
BLOCK_BYTES = 1 << 20


def sigmoid(z: Array, out: Array | None = None) -> Array:
    """σ(z) = 1 / (1 + e^(−z)), exact 0 and 1 in the limits and silent for any |z|.

    e^(−z) overflows to +inf for z < −709; 1 / (1 + inf) is then exactly 0, so the overflow is
    harmless and its warning is suppressed. One exponential per element.
    """
    with np.errstate(over="ignore"):
        out = np.negative(z, out=out)
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


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


def squared_norms(W1: Array, W2: Array) -> Array:
    """‖W1‖² + ‖W2‖² for each copy (a scalar for unbatched weights)."""
    return np.square(W1).sum(axis=(-2, -1)) + np.square(W2).sum(axis=(-2, -1))


@dataclass
class Workspace:
    """Reusable buffers for one row block of every copy: (S, B, h) and (S, B, k) arrays."""

    a2: Array
    delta2: Array
    yhat: Array
    delta3: Array
    gW1: Array
    gW2: Array

    @classmethod
    def for_shapes(cls, W1: Array, W2: Array, n_rows: int) -> Workspace:
        """Buffers for weights W1 (S, d, h), W2 (S, h, k) and inputs of up to n_rows rows."""
        copies, _, hidden = W1.shape
        outputs = W2.shape[-1]
        width = max(hidden, outputs, W1.shape[1])
        rows = max(1, min(n_rows, BLOCK_BYTES // (copies * width * W1.itemsize)))
        dtype = W1.dtype
        return cls(
            a2=np.empty((copies, rows, hidden), dtype),
            delta2=np.empty((copies, rows, hidden), dtype),
            yhat=np.empty((copies, rows, outputs), dtype),
            delta3=np.empty((copies, rows, outputs), dtype),
            gW1=np.empty_like(W1),
            gW2=np.empty_like(W2),
        )

    @property
    def rows(self) -> int:
        """Rows per block."""
        return self.a2.shape[1]


def _blocks(n_rows: int, block: int):
    for start in range(0, n_rows, block):
        yield slice(start, min(start + block, n_rows))


def _rows(A: Array, rows: slice) -> Array:
    return A[rows] if A.ndim == 2 else A[:, rows]


def sum_squared_error(X: Array, y: Array, W1: Array, W2: Array, ws: Workspace) -> Array:
    """Σ ½ (y − ŷ)² for each copy: the forward pass alone, block by block."""
    sse = np.zeros(W1.shape[0])
    for rows in _blocks(X.shape[-2], ws.rows):
        b = rows.stop - rows.start
        a2, yhat = ws.a2[:, :b], ws.yhat[:, :b]
        sigmoid(np.matmul(_rows(X, rows), W1, out=a2), out=a2)
        sigmoid(np.matmul(a2, W2, out=yhat), out=yhat)
        np.subtract(_rows(y, rows), yhat, out=yhat)
        sse += 0.5 * np.einsum("sbk,sbk->s", yhat, yhat)
    return sse


def cost(X: Array, y: Array, W1: Array, W2: Array, lam: float, r: float, ws: Workspace) -> Array:
    """C = r Σ ½ (y − ŷ)² + λ/2 (‖W1‖² + ‖W2‖²) for each copy."""
    return r * sum_squared_error(X, y, W1, W2, ws) + 0.5 * lam * squared_norms(W1, W2)


def cost_and_gradients(
    X: Array, y: Array, W1: Array, W2: Array, lam: float, r: float, ws: Workspace
) -> tuple[Array, Array, Array]:
    """C, ∂C/∂W1 and ∂C/∂W2 for each copy, by the slides' backpropagation.

    The gradients are written into ``ws.gW1`` and ``ws.gW2`` and returned as those buffers.
    """
    sse = np.zeros(W1.shape[0])
    ws.gW1.fill(0.0)
    ws.gW2.fill(0.0)
    for rows in _blocks(X.shape[-2], ws.rows):
        b = rows.stop - rows.start
        a2, delta2 = ws.a2[:, :b], ws.delta2[:, :b]
        yhat, delta3 = ws.yhat[:, :b], ws.delta3[:, :b]
        Xb = _rows(X, rows)
        sigmoid(np.matmul(Xb, W1, out=a2), out=a2)  # a2 = σ(s2), s2 = X W1
        sigmoid(np.matmul(a2, W2, out=yhat), out=yhat)  # ŷ = σ(s3), s3 = a2 W2
        np.subtract(yhat, _rows(y, rows), out=delta3)  # −(y − ŷ)
        sse += 0.5 * np.einsum("sbk,sbk->s", delta3, delta3)
        delta3 *= yhat
        np.subtract(1.0, yhat, out=yhat)
        delta3 *= yhat  # δ3 = −(y − ŷ) σ'(s3), σ'(s3) = ŷ(1 − ŷ)
        ws.gW2 += np.matmul(a2.swapaxes(-1, -2), delta3)  # Σ a2ᵀ δ3
        np.matmul(delta3, W2.swapaxes(-1, -2), out=delta2)  # δ3 W2ᵀ
        delta2 *= a2
        np.subtract(1.0, a2, out=a2)
        delta2 *= a2  # δ2 = δ3 W2ᵀ σ'(s2), σ'(s2) = a2(1 − a2)
        ws.gW1 += np.matmul(Xb.swapaxes(-1, -2), delta2)  # Σ Xᵀ δ2
    ws.gW1 *= r
    ws.gW1 += lam * W1
    ws.gW2 *= r
    ws.gW2 += lam * W2
    return r * sse + 0.5 * lam * squared_norms(W1, W2), ws.gW1, ws.gW2
