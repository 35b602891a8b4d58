"""The core's math: hand-derived values, the slides' equations, a numerical gradient check."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnexp.core import (
    Hyperparams,
    Workspace,
    cost,
    cost_and_gradients,
    forward,
    gradient_check,
    init_weights,
    network,
    reduction_factor,
    sigmoid,
    train,
)


def slide_equations(X, y, W1, W2, lam, r):
    """The slides, line by line, on unbatched weights: returns C, dC/dW1, dC/dW2."""
    s2 = X @ W1
    a2 = 1 / (1 + np.exp(-s2))
    s3 = a2 @ W2
    yhat = 1 / (1 + np.exp(-s3))
    C = r * np.sum(0.5 * (y - yhat) ** 2) + lam / 2 * (np.sum(W1**2) + np.sum(W2**2))
    delta3 = -(y - yhat) * (yhat * (1 - yhat))
    dW2 = r * a2.T @ delta3 + lam * W2
    delta2 = delta3 @ W2.T * (a2 * (1 - a2))
    dW1 = r * X.T @ delta2 + lam * W1
    return C, dW1, dW2


def kernel(X, y, W1, W2, lam, reduction):
    ws = Workspace.for_shapes(W1[None], W2[None], X.shape[0])
    r = reduction_factor(reduction, X.shape[0])
    c, gW1, gW2 = cost_and_gradients(X, y, W1[None].copy(), W2[None].copy(), lam, r, ws)
    return c[0], gW1[0].copy(), gW2[0].copy()


def test_sigmoid_limits_are_exact_and_silent():
    with warnings.catch_warnings(), np.errstate(over="warn", invalid="warn", divide="warn"):
        warnings.simplefilter("error")
        values = sigmoid(np.array([-1e4, -800.0, 0.0, 800.0, 1e4]))
    assert values[0] == 0.0 and values[-1] == 1.0 and values[2] == 0.5
    assert values[1] == 0.0 and values[3] == 1.0


def test_sigmoid_matches_its_definition():
    z = np.linspace(-30, 30, 121)
    assert np.allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-15, atol=0)


def test_hand_derived_zero_weights():
    """W = 0: a2 = ŷ = ½, C = ½(1 − ½)² = 1/8, δ3 = −½·¼ = −1/8, dC/dW2 = a2ᵀδ3 = −1/16,
    dC/dW1 = 0."""
    X, y = np.array([[1.0, 2.0]]), np.array([[1.0]])
    c, dW1, dW2 = kernel(X, y, np.zeros((2, 3)), np.zeros((3, 1)), lam=0.0, reduction="mean")
    assert c == pytest.approx(0.125, abs=1e-15)
    assert np.allclose(dW2, -1 / 16, atol=1e-15)
    assert np.allclose(dW1, 0.0, atol=1e-15)


def test_hand_derived_one_unit_network():
    """1-1-1 network, X = 2, y = 0, W1 = ½, W2 = −1, λ = 0.1, sum reduction."""
    a2 = 1 / (1 + math.exp(-1.0))  # s2 = 2 · ½
    yhat = 1 / (1 + math.exp(a2))  # s3 = −a2
    delta3 = -(0 - yhat) * yhat * (1 - yhat)
    expected_cost = 0.5 * yhat**2 + 0.05 * (0.25 + 1.0)
    expected_dW2 = a2 * delta3 + 0.1 * -1.0
    expected_dW1 = 2.0 * (delta3 * -1.0 * a2 * (1 - a2)) + 0.1 * 0.5
    c, dW1, dW2 = kernel(
        np.array([[2.0]]), np.array([[0.0]]), np.array([[0.5]]), np.array([[-1.0]]), 0.1, "sum"
    )
    assert c == pytest.approx(expected_cost, rel=1e-14)
    assert dW2[0, 0] == pytest.approx(expected_dW2, rel=1e-14)
    assert dW1[0, 0] == pytest.approx(expected_dW1, rel=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("lam", [0.0, 1e-3])
def test_kernel_equals_the_slides_across_row_blocks(monkeypatch, reduction, lam):
    """Rows processed in many small cache blocks give the slides' unblocked result."""
    monkeypatch.setattr(network, "BLOCK_BYTES", 64 * 8 * 7)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((103, 5)), rng.uniform(size=(103, 2))
    W1, W2 = rng.standard_normal((5, 7)), rng.standard_normal((7, 2))
    r = reduction_factor(reduction, 103)
    expected = slide_equations(X, y, W1, W2, lam, r)
    got = kernel(X, y, W1, W2, lam, reduction)
    assert Workspace.for_shapes(W1[None], W2[None], 103).rows < 103
    for e, g in zip(expected, got, strict=True):
        assert np.allclose(e, g, rtol=1e-12, atol=1e-14)


def test_cost_alone_equals_cost_of_the_gradient_pass():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((20, 3)), rng.uniform(size=(20, 1))
    W1, W2 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 1))
    ws = Workspace.for_shapes(W1, W2, 20)
    alone = cost(X, y, W1, W2, 0.01, 1 / 20, ws)
    with_grads, _, _ = cost_and_gradients(X, y, W1, W2, 0.01, 1 / 20, ws)
    assert np.array_equal(alone, with_grads)


def test_forward_is_the_prediction():
    rng = np.random.default_rng(3)
    X, W1, W2 = (
        rng.standard_normal((6, 2)),
        rng.standard_normal((2, 3)),
        rng.standard_normal((3, 1)),
    )
    assert np.allclose(forward(X, W1, W2), sigmoid(sigmoid(X @ W1) @ W2))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 12),
    d=st.integers(1, 5),
    hidden=st.integers(1, 6),
    k=st.integers(1, 4),
    reduction=st.sampled_from(["mean", "sum"]),
    lam=st.sampled_from([0.0, 1e-4, 0.1, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_gradient_check_property(n, d, hidden, k, reduction, lam, seed):
    """Backpropagation agrees with central differences to a relative error below 1e-6."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.uniform(size=(n, k))
    W1, W2 = rng.standard_normal((1, d, hidden)), rng.standard_normal((1, hidden, k))
    assert gradient_check(X, y, W1, W2, lam, reduction) < 1e-6


def test_training_lowers_the_cost_on_sleep_study_and_is_deterministic():
    from nnexp.data import load_dataset

    data = load_dataset({"name": "sleep_study"}, np.random.default_rng(0))

    def run():
        rngs = [np.random.default_rng(7)]
        W1, W2 = init_weights(2, 3, 1, "normal", rngs)
        return train(
            W1,
            W2,
            (data.X_train, data.y_train),
            (data.X_test, data.y_test),
            Hyperparams(lr=2.0, epochs=300),
            rngs,
        )

    first, second = run(), run()
    assert np.array_equal(first.W1, second.W1) and np.array_equal(first.W2, second.W2)
    epochs, train_cost, _ = first.history.as_arrays()
    assert list(epochs) == list(range(301))
    assert train_cost[-1, 0] < train_cost[0, 0] / 5
    assert np.array_equal(train_cost, second.history.as_arrays()[1])
