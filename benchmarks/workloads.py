"""The benchmark problems and the two nnexp-side workloads: our training epochs and the bare
matrix products of an epoch (the floor that elementwise work is measured against)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnexp import core
from nnexp.data import load_dataset

#: Learning rate and L2 λ of every timed run; the values only need to keep training sane.
LR, L2 = 0.1, 1e-4


@dataclass(frozen=True)
class Problem:
    """A training set and the hidden width to train on it."""

    name: str
    X: np.ndarray
    y: np.ndarray
    hidden: int

    @property
    def shape(self) -> str:
        """'name N×d→h→k'."""
        (n, d), k = self.X.shape, self.y.shape[1]
        return f"{self.name} {n}×{d}→{self.hidden}→{k}"

    @property
    def nbytes(self) -> int:
        """Bytes of X and y."""
        return self.X.nbytes + self.y.nbytes

    def astype(self, dtype: np.dtype | type) -> Problem:
        """The same problem with X and y cast to dtype."""
        return Problem(self.name, self.X.astype(dtype), self.y.astype(dtype), self.hidden)


def sleep_study() -> Problem:
    """The lecture's 4 training rows, 2 → 3 → 1."""
    data = load_dataset({"name": "sleep_study"}, np.random.default_rng(0))
    return Problem("sleep_study", data.X_train, data.y_train, 3)


def digits() -> Problem:
    """scikit-learn's digits, 80 % training split, one-hot targets, 64 → 64 → 10."""
    data = load_dataset({"name": "digits", "test_fraction": 0.2}, np.random.default_rng(0))
    return Problem("digits", data.X_train, data.y_train, 64)


def synthetic(n: int = 100_000, d: int = 100, hidden: int = 256, dtype=np.float64) -> Problem:
    """X ~ N(0, 1) of shape (n, d), y = σ(X a) for a teacher a ~ N(0, 1/d), made in dtype."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d), dtype=dtype)
    y = core.sigmoid(X @ (rng.standard_normal((d, 1), dtype=dtype) / np.sqrt(d)))
    return Problem("synthetic", X, y, hidden)


def generators(copies: int = 1, seed: int = 0) -> list[np.random.Generator]:
    """One generator per copy, seeded seed, seed + 1, …"""
    return [np.random.default_rng(seed + copy) for copy in range(copies)]


def initial_weights(
    problem: Problem, copies: int = 1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Xavier-initialised (S, d, h) and (S, h, k) weights in the problem's dtype."""
    d, k = problem.X.shape[1], problem.y.shape[1]
    rngs = generators(copies, seed)
    return core.init_weights(d, problem.hidden, k, "xavier", rngs, problem.X.dtype)


def ours(problem: Problem, epochs: int, copies: int = 1, seed: int = 0) -> Callable[[], object]:
    """One call: ``core.train`` for ``epochs`` full-batch epochs from fresh copies of the same
    initial weights, no test set, costs recorded every epoch (the harness's default)."""
    W1, W2 = initial_weights(problem, copies, seed)
    hp = core.Hyperparams(lr=LR, epochs=epochs, l2=L2)
    rngs = generators(copies, seed)

    def run() -> core.TrainResult:
        return core.train(W1.copy(), W2.copy(), (problem.X, problem.y), None, hp, rngs)

    return run


def gemm_only(problem: Problem, epochs: int) -> Callable[[], object]:
    """One call: ``epochs`` times the five matrix products of an epoch at full size into
    preallocated outputs: X W1, a2 W2, a2ᵀ δ3, δ3 W2ᵀ, Xᵀ δ2."""
    W1, W2 = (W[0] for W in initial_weights(problem))
    X = problem.X
    a2 = np.empty((X.shape[0], problem.hidden), X.dtype)
    delta2 = np.empty_like(a2)
    delta3 = np.empty_like(problem.y)
    gW1, gW2 = np.empty_like(W1), np.empty_like(W2)

    def run() -> object:
        for _ in range(epochs):
            np.matmul(X, W1, out=a2)
            np.matmul(a2, W2, out=delta3)
            np.matmul(a2.T, delta3, out=gW2)
            np.matmul(delta3, W2.T, out=delta2)
            np.matmul(X.T, delta2, out=gW1)
        return gW1

    return run
