"""Central-difference gradient check of the analytic backpropagation."""

from __future__ import annotations

import numpy as np

from nnexp.core.network import Array, Workspace, cost, cost_and_gradients, reduction_factor


def numerical_gradients(
    X: Array, y: Array, W1: Array, W2: Array, lam: float, reduction: str, eps: float = 1e-6
) -> tuple[Array, Array]:
    """∂C/∂W ≈ (C(W + ε e_i) − C(W − ε e_i)) / 2ε for every weight of every copy."""
    r = reduction_factor(reduction, X.shape[-2])
    ws = Workspace.for_shapes(W1, W2, X.shape[-2])
    grads = []
    for W in (W1, W2):
        grad = np.empty_like(W)
        for index in np.ndindex(W.shape):
            original = W[index]
            W[index] = original + eps
            plus = cost(X, y, W1, W2, lam, r, ws)[index[0]]
            W[index] = original - eps
            minus = cost(X, y, W1, W2, lam, r, ws)[index[0]]
            W[index] = original
            grad[index] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads[0], grads[1]


def relative_error(a: Array, b: Array) -> float:
    """‖a − b‖ / max(‖a‖ + ‖b‖, tiny): 0 when equal, ~1 when unrelated."""
    denominator = max(float(np.linalg.norm(a) + np.linalg.norm(b)), np.finfo(float).tiny)
    return float(np.linalg.norm(a - b)) / denominator


def gradient_check(
    X: Array, y: Array, W1: Array, W2: Array, lam: float = 0.0, reduction: str = "mean"
) -> float:
    """Largest relative error between backpropagation and central differences over W1 and W2."""
    r = reduction_factor(reduction, X.shape[-2])
    ws = Workspace.for_shapes(W1, W2, X.shape[-2])
    _, gW1, gW2 = cost_and_gradients(X, y, W1, W2, lam, r, ws)
    nW1, nW2 = numerical_gradients(X, y, W1, W2, lam, reduction)
    return max(relative_error(gW1, nW1), relative_error(gW2, nW2))
