"""What a run records at each recorded epoch: a registry of named metrics, each one function.

A metric maps the state at a recorded epoch (``Probe``) to one value per copy, shape (S,). The
history keeps them as name → (R, S); costs.csv, the MLflow logging, summaries and reproduce
iterate over the names. Adding a metric to every run is its function and its entry in
``METRICS`` (with when it is recorded, and whether lower or higher is better).

- ``train_cost``, ``test_cost``: always (the training loop computes them itself).
- ``train_accuracy``, ``test_accuracy``: for classification datasets; the share of rows whose
  predicted class is the target's: argmax over the k > 1 one-hot outputs, ŷ ≥ 0.5 for k = 1.
- with dynamics on: ‖∂C/∂W1‖, ‖∂C/∂W2‖, ‖W1‖, ‖W2‖ (Frobenius, per copy; the gradient of C on
  the whole training set, λ term included) and the share of hidden activations saturated,
  a2 < 0.01 or a2 > 0.99, over the training rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from nnexp.core.network import PerCopy, raw_cost_and_gradients, raw_forward_sums
from nnexp.core.workspace import Array, Pair, Workspace

#: When a metric is recorded.
ALWAYS, CLASSIFICATION, DYNAMICS = "always", "classification", "dynamics"
#: Saturated hidden units: a2 below the first or above the second.
SATURATED = (0.01, 0.99)


@dataclass
class Probe:
    """The state at a recorded epoch: the weights (flat pair), both splits, λ and r of the
    training set, and a scratch workspace (made on first use, kept in ``kept`` for the next
    epochs: the training loop's own holds a gradient it has not used yet)."""

    weights: Pair
    train_set: tuple[Array, Array]
    test_set: tuple[Array, Array] | None
    lam: PerCopy
    r: float
    kept: list[Workspace] = field(default_factory=list)

    @property
    def scratch(self) -> Workspace:
        """The scratch workspace, for inputs of up to the larger split's rows."""
        if not self.kept:
            rows = max(len(self.train_set[0]), len(self.test_set[0]) if self.test_set else 0)
            self.kept.append(Workspace.for_shapes(self.weights.W1, self.weights.W2, rows))
        return self.kept[0]

    @cached_property
    def gradient(self) -> Pair:
        """∂C/∂W1 and ∂C/∂W2 on the whole training set (computed once per probe)."""
        W1, W2 = self.weights.W1, self.weights.W2
        raw_cost_and_gradients(*self.train_set, W1, W2, self.lam, self.r, self.scratch)
        return self.scratch.grads[0]


def _correct(yb: Array, a2: Array, yhat: Array) -> Array:
    """Rows whose predicted class is the target's, per copy (float64 counts)."""
    if yhat.shape[-1] == 1:
        hits = (yhat[..., 0] >= 0.5) == (yb[..., 0] >= 0.5)
    else:
        hits = np.argmax(yhat, axis=-1) == np.argmax(yb, axis=-1)
    return hits.sum(axis=-1, dtype=np.float64)


def _saturated(yb: Array, a2: Array, yhat: Array) -> Array:
    """Hidden activations below or above ``SATURATED``, per copy (float64 counts)."""
    low, high = SATURATED
    return ((a2 < low) | (a2 > high)).sum(axis=(-2, -1), dtype=np.float64)


def _accuracy(split: tuple[Array, Array] | None, probe: Probe) -> Array:
    if split is None:
        return np.full(probe.weights.flat.shape[0], np.nan)
    X, y = split
    counts = raw_forward_sums(X, y, probe.weights.W1, probe.weights.W2, probe.scratch, _correct)
    return counts / len(X)


def _norms(A: Array) -> Array:
    """‖A[i]‖ (Frobenius) of each copy i, in float64."""
    flat = A.reshape(A.shape[0], -1)
    return np.sqrt(np.vecdot(flat, flat, dtype=np.float64))


def _saturated_fraction(probe: Probe) -> Array:
    X, y = probe.train_set
    W1, W2 = probe.weights.W1, probe.weights.W2
    return raw_forward_sums(X, y, W1, W2, probe.scratch, _saturated) / (len(X) * W1.shape[-1])


@dataclass(frozen=True)
class Metric:
    """A metric: when it is recorded, whether lower (``min``) or higher (``max``) is better
    (None: no best, as for norms), and its function (None: the training loop computes it)."""

    when: str
    better: str | None
    compute: Callable[[Probe], Array] | None = None


METRICS: dict[str, Metric] = {
    "train_cost": Metric(ALWAYS, "min"),
    "test_cost": Metric(ALWAYS, "min"),
    "train_accuracy": Metric(CLASSIFICATION, "max", lambda p: _accuracy(p.train_set, p)),
    "test_accuracy": Metric(CLASSIFICATION, "max", lambda p: _accuracy(p.test_set, p)),
    "grad_norm_W1": Metric(DYNAMICS, None, lambda p: _norms(p.gradient.W1)),
    "grad_norm_W2": Metric(DYNAMICS, None, lambda p: _norms(p.gradient.W2)),
    "weight_norm_W1": Metric(DYNAMICS, None, lambda p: _norms(p.weights.W1)),
    "weight_norm_W2": Metric(DYNAMICS, None, lambda p: _norms(p.weights.W2)),
    "saturated_fraction": Metric(DYNAMICS, None, _saturated_fraction),
}


def metric_names(classification: bool = False, dynamics: bool = False) -> list[str]:
    """The metrics a run records, in registry order: the costs, accuracy for a classification
    dataset, the training dynamics when asked for."""
    chosen = {
        ALWAYS,
        *([CLASSIFICATION] if classification else []),
        *([DYNAMICS] if dynamics else []),
    }
    return [name for name, metric in METRICS.items() if metric.when in chosen]


def best(name: str, values: Array, epochs: Array) -> tuple[Array, Array] | None:
    """Per copy the best value of ``values`` (R, S) over the recorded epochs and the first epoch
    it was reached (NaN where a copy has no finite value); None for a metric without a best."""
    better = METRICS[name].better
    if better is None:
        return None
    finite = np.isfinite(values)
    fill = np.inf if better == "min" else -np.inf
    masked = np.where(finite, values, fill)
    rows = np.argmin(masked, axis=0) if better == "min" else np.argmax(masked, axis=0)
    copies = np.arange(values.shape[1])
    found = finite.any(axis=0)
    value = np.where(found, masked[rows, copies], np.nan)
    epoch = np.where(found, np.asarray(epochs, np.float64)[rows], np.nan)
    return value, epoch
