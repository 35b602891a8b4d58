"""The core's math: hand-derived values, the slides' equations (``nnexp.core.reference``) against
the fast kernel, a numerical gradient check."""

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
    reduction_factor,
    reference,
    sigmoid,
    train,
    workspace,
)


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
    monkeypatch.setattr(workspace, "BLOCK_BYTES", 64 * 8 * 7)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((103, 5)), rng.uniform(size=(103, 2))
    W1, W2 = rng.standard_normal((5, 7)), rng.standard_normal((7, 2))
    r = reduction_factor(reduction, 103)
    expected = reference.cost_and_gradients(X, y, W1, W2, lam, r)
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


@pytest.fixture
def many_stripes(monkeypatch):
    """Small blocks and stripes, three worker threads even on a one-core machine."""
    monkeypatch.setattr(workspace, "BLOCK_BYTES", 8 * 7 * 16)
    monkeypatch.setattr(workspace, "STRIPE_ELEMENTS", 7 * 20)
    monkeypatch.setattr(workspace, "usable_cpus", lambda: 3)


def serial_copy(ws):
    """The same workspace, its stripes run one after another in this thread."""
    return Workspace(**{**vars(ws), "buffers": ws.buffers[:1], "_plans": {}})


@pytest.mark.parametrize("copies", [1, 3])
@pytest.mark.parametrize("shared_rows", [True, False])
def test_stripes_on_threads_equal_the_slides_and_any_thread_count(
    many_stripes, copies, shared_rows
):
    """Stripes of blocks on several threads give the slides' result, bit for bit the same as on
    one thread; per-copy row sets (S, N, d) too."""
    rng = np.random.default_rng(4)
    n = 157
    X = rng.standard_normal((copies, n, 5) if not shared_rows else (n, 5))
    y = rng.uniform(size=(copies, n, 2) if not shared_rows else (n, 2))
    W1, W2 = rng.standard_normal((copies, 5, 7)), rng.standard_normal((copies, 7, 2))
    ws = Workspace.for_shapes(W1, W2, n)
    assert len(ws.stripes(n)) >= 4 and len(ws.buffers) == 3
    assert ws.rows < ws.stripe_rows
    threaded = [a.copy() for a in cost_and_gradients(X, y, W1, W2, 1e-3, 1 / n, ws)]
    serial = cost_and_gradients(X, y, W1, W2, 1e-3, 1 / n, serial_copy(ws))
    for t, s in zip(threaded, serial, strict=True):
        assert np.array_equal(t, s)
    assert np.array_equal(cost(X, y, W1, W2, 1e-3, 1 / n, ws), threaded[0])
    for copy in range(copies):
        Xc, yc = (X, y) if shared_rows else (X[copy], y[copy])
        expected = reference.cost_and_gradients(Xc, yc, W1[copy], W2[copy], 1e-3, 1 / n)
        got = (threaded[0][copy], threaded[1][copy], threaded[2][copy])
        for e, g in zip(expected, got, strict=True):
            assert np.allclose(e, g, rtol=1e-12, atol=1e-14)


@settings(max_examples=40, deadline=None)
@given(n_rows=st.integers(1, 3000), copies=st.integers(1, 4), hidden=st.integers(1, 300))
def test_stripe_plan_covers_every_row_once_in_order(n_rows, copies, hidden):
    W1, W2 = np.empty((copies, 3, hidden)), np.empty((copies, hidden, 2))
    ws = Workspace.for_shapes(W1, W2, n_rows)
    for rows in (n_rows, max(1, n_rows // 3), n_rows * 2):
        plan = ws.stripes(rows)
        assert 1 <= len(plan) <= len(ws.grads) <= workspace.MAX_STRIPES
        blocks = [block for stripe in plan for block in stripe]
        assert [start for start, _ in blocks] == [0] + [stop for _, stop in blocks[:-1]]
        assert blocks[-1][1] == rows
        assert all(0 < stop - start <= ws.rows for start, stop in blocks)
        alone = Workspace.for_shapes(W1[:1], W2[:1], n_rows)
        assert plan == alone.stripes(rows)  # the row plan ignores the number of copies
    covered = [copy for chunk in ws.chunks for copy in range(copies)[chunk]]
    assert covered == list(range(copies))


def test_threaded_pass_is_silent_and_restores_the_blas_threads(many_stripes):
    """Saturating weights overflow e^(−z) inside the worker threads without a warning, and the
    BLAS thread count is what it was before the pass."""
    from threadpoolctl import threadpool_info

    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((157, 5)), rng.uniform(size=(157, 2))
    W1, W2 = 1e4 * rng.standard_normal((1, 5, 7)), rng.standard_normal((1, 7, 2))
    before = [lib["num_threads"] for lib in threadpool_info()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c, gW1, _ = cost_and_gradients(X, y, W1, W2, 0.0, 1.0, Workspace.for_shapes(W1, W2, 157))
    assert np.isfinite(c).all() and np.isfinite(gW1).all()
    assert [lib["num_threads"] for lib in threadpool_info()] == before


# Forking while the worker threads live is the point; Python ≥ 3.12 warns of exactly that.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_threaded_pass_works_in_a_forked_child(many_stripes):
    """The worker threads are made anew in a forked child (they do not survive fork)."""
    import multiprocessing

    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((157, 5)), rng.uniform(size=(157, 2))
    W1, W2 = rng.standard_normal((1, 5, 7)), rng.standard_normal((1, 7, 2))
    ws = Workspace.for_shapes(W1, W2, 157)
    expected = cost(X, y, W1, W2, 0.0, 1.0, ws)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply(cost, (X, y, W1, W2, 0.0, 1.0, ws))
    assert np.array_equal(got, expected)
