"""The slides, line by line: forward, cost, deltas, gradients and one update in plain numpy.

This is the math to read. ``nnexp.core.network`` computes the same values fast (row blocks,
stripes on threads, in place), and tests/test_network.py checks it against these lines. One
network, unbatched weights W1 (d, h) and W2 (h, k); r = 1/N ("mean") or 1 ("sum").
"""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^(−z)) (numpy warns of overflow for z < −709; the kernel's does not)."""
    return 1 / (1 + np.exp(-z))


def cost_and_gradients(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, W2: np.ndarray, lam: float, r: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """C, ∂C/∂W1 and ∂C/∂W2 by the slides' forward pass and backpropagation."""
    s2 = X @ W1
    a2 = sigmoid(s2)
    s3 = a2 @ W2
    yhat = sigmoid(s3)
    C = r * np.sum(0.5 * (y - yhat) ** 2) + lam / 2 * (np.sum(W1**2) + np.sum(W2**2))
    delta3 = -(y - yhat) * (yhat * (1 - yhat))  # σ'(s3) = ŷ (1 − ŷ)
    dW2 = r * a2.T @ delta3 + lam * W2
    delta2 = delta3 @ W2.T * (a2 * (1 - a2))  # σ'(s2) = a2 (1 − a2)
    dW1 = r * X.T @ delta2 + lam * W1
    return float(C), dW1, dW2


def step(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, W2: np.ndarray, lam: float, r: float, lr: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """One gradient-descent update, W ← W − lr ∂C/∂W: returns C before it and the new W1, W2."""
    C, dW1, dW2 = cost_and_gradients(X, y, W1, W2, lam, r)
    return C, W1 - lr * dW1, W2 - lr * dW2


# The optimizers' updates (nnexp.core.optimizers), for one weight matrix W with its gradient dW
# = ∂C/∂W and its velocity V (zeros before the first step); each returns the new W and V.


def gd(W: np.ndarray, dW: np.ndarray, V: np.ndarray, lr: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradient descent (``gd``, and ``sgd`` on mini-batches): W ← W − lr ∂C/∂W."""
    return W - lr * dW, V


def momentum(
    W: np.ndarray, dW: np.ndarray, V: np.ndarray, lr: float, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Momentum (PyTorch's convention): V ← β V + ∂C/∂W, W ← W − lr V."""
    V = beta * V + dW
    return W - lr * V, V


def nesterov(
    W: np.ndarray, dW: np.ndarray, V: np.ndarray, lr: float, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Nesterov momentum (PyTorch's form): V ← β V + ∂C/∂W, W ← W − lr (∂C/∂W + β V)."""
    V = beta * V + dW
    return W - lr * (dW + beta * V), V
