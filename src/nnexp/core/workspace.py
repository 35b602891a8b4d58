"""How a pass over the rows is cut up, and the reusable buffers it writes into.

The N rows are cut into at most ``MAX_STRIPES`` stripes of consecutive rows, each stripe into row
blocks small enough to stay in a core's cache. Each stripe sums its own gradient part, block by
block in order, and the parts are added in stripe order, so the rounding depends on the shapes
alone: the same for any number of cores and whichever core runs which stripe. Stripes run on
up to one thread per core (see ``nnexp.core.parallel``), each thread with its own block buffers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from nnexp.core.parallel import usable_cpus

Array = np.ndarray
#: A stripe's row blocks as (first row, end row) pairs.
Blocks = list[tuple[int, int]]

#: Bytes of hidden activations per row block of one copy: with the block's rows of X and δ2 it
#: stays in a core's L2 cache, and is large enough for its matrix products to run at full speed.
BLOCK_BYTES = 1 << 20

#: Hidden activations (rows × h of one copy) a stripe must have to be worth a thread hand-off.
STRIPE_ELEMENTS = 1 << 18

#: Most stripes per pass: fixed, so results never depend on the machine's core count.
MAX_STRIPES = 8


@dataclass(frozen=True)
class Pair:
    """W1-shaped (S, d, h) and W2-shaped (S, h, k) arrays side by side in one (S, P) array, P =
    d·h + h·k, so that one ufunc call covers both (weights, gradients and their parts)."""

    flat: Array
    W1: Array
    W2: Array

    @classmethod
    def like(cls, W1: Array, W2: Array) -> Pair:
        """An uninitialised pair shaped and typed like W1 and W2."""
        copies, d, hidden = W1.shape
        size = d * hidden
        flat = np.empty((copies, size + W2[0].size), W1.dtype)
        return cls(flat, flat[:, :size].reshape(W1.shape), flat[:, size:].reshape(W2.shape))

    def copies(self, part: slice) -> Pair:
        """The pair of the copies in ``part`` (views)."""
        return Pair(self.flat[part], self.W1[part], self.W2[part])


@dataclass
class Buffers:
    """One thread's buffers: a row block of every copy, (S, B, h) and (S, B, k), and room for one
    block's Xᵀ δ2 and a2ᵀ δ3."""

    a2: Array
    delta2: Array
    yhat: Array
    delta3: Array
    part: Pair

    @classmethod
    def for_shapes(cls, W1: Array, W2: Array, rows: int, copies: int) -> Buffers:
        """Buffers for blocks of ``rows`` rows of up to ``copies`` of the copies of weights
        W1 (S, d, h) and W2 (S, h, k)."""
        hidden, outputs = W1.shape[2], W2.shape[2]
        return cls(
            a2=np.empty((copies, rows, hidden), W1.dtype),
            delta2=np.empty((copies, rows, hidden), W1.dtype),
            yhat=np.empty((copies, rows, outputs), W1.dtype),
            delta3=np.empty((copies, rows, outputs), W1.dtype),
            part=Pair.like(W1[:copies], W2[:copies]),
        )

    def cut(self, copies: int) -> Buffers:
        """These buffers for the first ``copies`` copies only (views; itself if all)."""
        if copies == self.a2.shape[0]:
            return self
        first = slice(0, copies)
        return Buffers(
            self.a2[first],
            self.delta2[first],
            self.yhat[first],
            self.delta3[first],
            self.part.copies(first),
        )

    def blocks(
        self, X: Array, y: Array, blocks: Blocks
    ) -> Iterator[tuple[Array, Array, Array, Array, Array, Array]]:
        """(X rows, y rows, a2, delta2, yhat, delta3) for each (first row, end row) of
        ``blocks``, the buffers cut to the block's rows."""
        n_rows, capacity = X.shape[-2], self.a2.shape[1]
        for start, stop in blocks:
            rows = stop - start
            Xb, yb = (X, y) if rows == n_rows else (X[..., start:stop, :], y[..., start:stop, :])
            if rows == capacity:
                yield Xb, yb, self.a2, self.delta2, self.yhat, self.delta3
            else:
                cut = slice(0, rows)
                yield (
                    Xb,
                    yb,
                    self.a2[:, cut],
                    self.delta2[:, cut],
                    self.yhat[:, cut],
                    self.delta3[:, cut],
                )


@dataclass
class Workspace:
    """Everything a pass writes: block buffers per thread; the weights as one flat pair (the
    kernel's own copy, unless the caller trains on ``weights.W1`` and ``weights.W2`` directly);
    each stripe's gradient sums, stripe 0's ending up as ∂C/∂W1 and ∂C/∂W2 (``gW1``, ``gW2``);
    −W1; and room for λ W (``decay``, flat). A pass's tasks are its stripes times ``chunks``,
    the copies cut into runs whose blocks fit the cache together (copies never mix, so chunks
    do not enter any result)."""

    rows: int
    stripe_rows: int
    chunks: list[slice]
    buffers: list[Buffers]
    weights: Pair
    grads: list[Pair]
    neg_W1: Array
    decay: Array
    _plans: dict[int, list[Blocks]] = field(default_factory=dict, repr=False)

    @classmethod
    def for_shapes(cls, W1: Array, W2: Array, n_rows: int) -> Workspace:
        """A workspace for weights W1 (S, d, h), W2 (S, h, k) and inputs of up to n_rows rows."""
        copies, d, hidden = W1.shape
        width = max(hidden, W2.shape[2], d)
        # The row plan depends on one copy's shapes alone, never on the number of copies, so
        # that copy i of a batched pass is summed in the same order, bit for bit, as alone.
        cache_rows = max(1, BLOCK_BYTES // (width * W1.itemsize))
        stripes = min(MAX_STRIPES, max(1, n_rows * hidden // STRIPE_ELEMENTS))
        stripe_rows = -(-n_rows // stripes)
        rows = min(cache_rows, stripe_rows)
        chunks = _copy_chunks(copies, stripes, rows * width * W1.itemsize, stripe_rows * hidden)
        threads = min(stripes * len(chunks), usable_cpus())
        weights = Pair.like(W1, W2)
        return cls(
            rows=rows,
            stripe_rows=stripe_rows,
            chunks=chunks,
            buffers=[Buffers.for_shapes(W1, W2, rows, chunks[0].stop) for _ in range(threads)],
            weights=weights,
            grads=[Pair.like(W1, W2) for _ in range(stripes)],
            neg_W1=np.empty_like(W1),
            decay=np.empty_like(weights.flat),
        )

    @property
    def gW1(self) -> Array:  # noqa: N802 (the slides' name)
        """∂C/∂W1 after a gradient pass."""
        return self.grads[0].W1

    @property
    def gW2(self) -> Array:  # noqa: N802 (the slides' name)
        """∂C/∂W2 after a gradient pass."""
        return self.grads[0].W2

    def flat_weights(self, W1: Array, W2: Array) -> Array:
        """(S, P) weights holding W1 and W2: ``weights.flat``, into which they are copied unless
        they are its own views."""
        if W1 is not self.weights.W1:
            np.copyto(self.weights.W1, W1)
        if W2 is not self.weights.W2:
            np.copyto(self.weights.W2, W2)
        return self.weights.flat

    def stripes(self, n_rows: int) -> list[Blocks]:
        """Each stripe of an input of n_rows rows as its blocks' (first row, end row). More rows
        than planned for make longer stripes, never more of them."""
        if n_rows not in self._plans:
            length = max(self.stripe_rows, -(-n_rows // len(self.grads)))
            self._plans[n_rows] = [
                [
                    (start, min(start + self.rows, stripe_start + length, n_rows))
                    for start in range(stripe_start, min(stripe_start + length, n_rows), self.rows)
                ]
                for stripe_start in range(0, n_rows, length)
            ]
        return self._plans[n_rows]


def _copy_chunks(copies: int, stripes: int, block_bytes: int, stripe_elements: int) -> list[slice]:
    """The copies cut into equal runs: few enough copies in each that their row blocks stay
    within ``BLOCK_BYTES``, and, when the work is worth the hand-offs (``STRIPE_ELEMENTS``
    hidden activations a task), enough runs for every core to have a task."""
    fit = -(-copies // max(1, BLOCK_BYTES // block_bytes))
    worth = min(usable_cpus(), copies * stripes * stripe_elements // STRIPE_ELEMENTS)
    count = min(copies, max(fit, -(-worth // stripes)))
    size = -(-copies // count)
    return [slice(start, min(start + size, copies)) for start in range(0, copies, size)]
