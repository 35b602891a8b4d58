"""The training loop: recording, mini-batches, divergence, batched copies, float32."""

import numpy as np
import pytest

from nnexp.core import METRICS, Hyperparams, init_weights, reference, train, workspace


def problem(n=40, d=3, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.uniform(size=(n, k))
    return (X, y), (X[:10] * 0.5, y[:10])


def fresh(seeds, d=3, hidden=4, k=2, dtype=np.float64):
    rngs = [np.random.default_rng(s) for s in seeds]
    W1, W2 = init_weights(d, hidden, k, "normal", rngs, dtype)
    return W1, W2, rngs


@pytest.fixture(params=["one stripe", "threaded stripes"])
def striping(request, monkeypatch):
    """As configured, or with rows cut into many small stripes run on three threads."""
    if request.param == "threaded stripes":
        monkeypatch.setattr(workspace, "BLOCK_BYTES", 8 * 4 * 4)
        monkeypatch.setattr(workspace, "STRIPE_ELEMENTS", 16)
        monkeypatch.setattr(workspace, "usable_cpus", lambda: 3)
    return request.param


def test_records_epoch_zero_every_n_and_the_last():
    train_set, test_set = problem()
    W1, W2, rngs = fresh([0])
    result = train(
        W1, W2, train_set, test_set, Hyperparams(lr=0.5, epochs=23), rngs, record_every=5
    )
    assert result.history.epochs == [0, 5, 10, 15, 20, 23]


def test_full_batch_step_is_the_documented_update():
    """One epoch: W ← W − lr ∂C/∂W, with the gradient of the initial weights."""
    from nnexp.core import Workspace, cost_and_gradients

    train_set, _ = problem()
    W1, W2, rngs = fresh([0])
    ws = Workspace.for_shapes(W1, W2, 40)
    _, gW1, gW2 = cost_and_gradients(*train_set, W1, W2, 0.01, 1 / 40, ws)
    expected1, expected2 = W1 - 0.3 * gW1, W2 - 0.3 * gW2
    train(W1, W2, train_set, None, Hyperparams(lr=0.3, epochs=1, l2=0.01), rngs)
    assert np.allclose(W1, expected1, rtol=1e-14) and np.allclose(W2, expected2, rtol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_training_follows_the_slides_step_by_step(striping, reduction):
    """Five epochs of the loop are five of the slides' updates (nnexp.core.reference.step), and
    each recorded train cost is the slides' C of the weights at that epoch."""
    train_set, _ = problem()
    W1, W2, rngs = fresh([0])
    hp = Hyperparams(lr=0.3, epochs=5, l2=0.01, reduction=reduction)
    r = 1 / 40 if reduction == "mean" else 1.0
    V1, V2, costs = W1[0].copy(), W2[0].copy(), []
    for _ in range(hp.epochs):
        cost, V1, V2 = reference.step(*train_set, V1, V2, hp.l2, r, hp.lr)
        costs.append(cost)
    costs.append(reference.cost_and_gradients(*train_set, V1, V2, hp.l2, r)[0])
    result = train(W1, W2, train_set, None, hp, rngs)
    assert np.allclose(result.W1[0], V1, rtol=1e-12, atol=1e-14)
    assert np.allclose(result.W2[0], V2, rtol=1e-12, atol=1e-14)
    assert np.allclose(result.history.as_arrays()[1][:, 0], costs, rtol=1e-12)


def test_mini_batches_are_seeded_and_differ_from_full_batch():
    train_set, test_set = problem()
    hp = Hyperparams(lr=0.5, epochs=5, batch_size=8)
    runs = []
    for _ in range(2):
        W1, W2, rngs = fresh([3])
        runs.append(train(W1, W2, train_set, test_set, hp, rngs))
    assert np.array_equal(runs[0].W1, runs[1].W1)
    W1, W2, rngs = fresh([3])
    full = train(W1, W2, train_set, test_set, Hyperparams(lr=0.5, epochs=5), rngs)
    assert not np.allclose(full.W1, runs[0].W1)
    assert len(runs[0].history.epochs) == 6


def test_divergence_stops_at_the_first_non_finite_cost():
    train_set, test_set = problem()
    W1, W2, rngs = fresh([0])
    result = train(
        W1, W2, train_set, test_set, Hyperparams(lr=1e308, epochs=50, reduction="sum"), rngs
    )
    assert result.diverged_at[0] is not None and result.diverged_at[0] < 50
    _, train_cost, _ = result.history.as_arrays()
    assert result.history.epochs[-1] == result.diverged_at[0]
    assert np.isnan(train_cost[-1, 0]) and np.isfinite(train_cost[0, 0])


def assert_copy_is_alone(batched, copy, alone):
    """Copy ``copy`` of a batched result equals the single-copy result ``alone``, bit for bit; a
    copy that diverged alone stopped recording there, where the batch records NaN for it."""
    assert np.array_equal(batched.W1[copy], alone.W1[0])
    assert np.array_equal(batched.W2[copy], alone.W2[0])
    assert batched.diverged_at[copy] == alone.diverged_at[0]
    recorded = len(alone.history.epochs)
    assert batched.history.epochs[:recorded] == alone.history.epochs
    assert list(batched.history.values) == list(alone.history.values)
    for name in batched.history.values:
        ours, theirs = batched.history.metric(name), alone.history.metric(name)
        assert np.array_equal(ours[:recorded, copy], theirs[:, 0], equal_nan=True)
        assert np.isnan(ours[recorded:, copy]).all()


@pytest.mark.parametrize("batch_size", [None, 16])
def test_batched_copies_equal_separate_runs(striping, batch_size):
    """Copy i of a batched run equals a separate run with the same generator, bit for bit."""
    train_set, test_set = problem(n=64)
    hp = Hyperparams(lr=0.7, epochs=30, l2=1e-3, batch_size=batch_size)
    W1, W2, rngs = fresh([10, 11, 12])
    batched = train(W1, W2, train_set, test_set, hp, rngs)
    for copy, seed in enumerate([10, 11, 12]):
        W1s, W2s, rngs_s = fresh([seed])
        assert_copy_is_alone(batched, copy, train(W1s, W2s, train_set, test_set, hp, rngs_s))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("batch_size", [None, 16])
def test_per_copy_hyperparameters_equal_each_copy_alone(striping, batch_size, reduction, dtype):
    """Copies with their own lr and λ (one λ = 0, one lr so large that the copy diverges while
    the others go on) each equal the copy trained alone with those floats, bit for bit."""
    scale = 1.0 if reduction == "mean" else 1 / 64
    lrs = [0.7 * scale, 0.2 * scale, 1e307, 1.3 * scale]
    l2s = [1e-3, 0.0, 1e-3, 0.05]
    cast = lambda pair: tuple(a.astype(dtype) for a in pair)  # noqa: E731
    train_set, test_set = (cast(part) for part in problem(n=64))
    seeds = [10, 11, 12, 13]
    hp = dict(epochs=12, reduction=reduction, batch_size=batch_size)
    W1, W2, rngs = fresh(seeds, dtype=dtype)
    every = list(METRICS)  # every metric is recorded per copy, as the costs are
    batched_hp = Hyperparams(lr=lrs, l2=l2s, **hp)
    batched = train(W1, W2, train_set, test_set, batched_hp, rngs, record=every)
    assert [at is not None for at in batched.diverged_at] == [False, False, True, False]
    for copy, seed in enumerate(seeds):
        W1s, W2s, rngs_s = fresh([seed], dtype=dtype)
        alone_hp = Hyperparams(lr=lrs[copy], l2=l2s[copy], **hp)
        alone = train(W1s, W2s, train_set, test_set, alone_hp, rngs_s, record=every)
        assert_copy_is_alone(batched, copy, alone)


@pytest.mark.parametrize("batch_size", [None, 16])
def test_a_float_equals_the_same_value_for_every_copy(batch_size):
    train_set, test_set = problem(n=64)
    results = []
    for lr, l2 in [(0.7, 1e-3), ([0.7, 0.7], np.array([1e-3, 1e-3]))]:
        W1, W2, rngs = fresh([3, 4])
        hp = Hyperparams(lr=lr, epochs=10, l2=l2, batch_size=batch_size)
        results.append(train(W1, W2, train_set, test_set, hp, rngs))
    for copy in (0, 1):
        assert_copy_is_alone(results[1], copy, _one_copy(results[0], copy))


def _one_copy(result, copy):
    """The result of copy ``copy`` alone, shaped as a single-copy result."""
    from nnexp.core import History, TrainResult

    values = {
        name: [row[copy : copy + 1] for row in rows] for name, rows in result.history.values.items()
    }
    history = History(epochs=result.history.epochs, values=values)
    return TrainResult(
        result.W1[copy : copy + 1], result.W2[copy : copy + 1], history, [result.diverged_at[copy]]
    )


def test_per_copy_hyperparameters_must_match_the_copies():
    train_set, test_set = problem()
    W1, W2, rngs = fresh([0, 1])
    with pytest.raises(ValueError, match="3 values for 2 copies"):
        train(W1, W2, train_set, test_set, Hyperparams(lr=[0.1, 0.2, 0.3], epochs=1), rngs)
    with pytest.raises(ValueError, match="shape \\(S,\\)"):
        Hyperparams(lr=0.1, epochs=1, l2=[[0.1]])


def test_per_copy_l2_enters_the_cost_and_gradient_of_its_copy_only():
    """C and ∂C/∂W with λ = (λ0, λ1) equal, copy by copy, the slides' with each float λ."""
    from nnexp.core import Workspace, cost_and_gradients

    (X, y), _ = problem()
    W1, W2, _ = fresh([0, 1])
    lams = np.array([0.0, 0.3])
    ws = Workspace.for_shapes(W1, W2, len(X))
    c, gW1, gW2 = cost_and_gradients(X, y, W1, W2, lams, 1 / len(X), ws)
    for copy, lam in enumerate(lams):
        expected = reference.cost_and_gradients(X, y, W1[copy], W2[copy], float(lam), 1 / len(X))
        assert np.allclose(c[copy], expected[0], rtol=1e-13)
        assert np.allclose(gW1[copy], expected[1], rtol=1e-12, atol=1e-15)
        assert np.allclose(gW2[copy], expected[2], rtol=1e-12, atol=1e-15)


def test_a_diverging_copy_does_not_disturb_the_others():
    train_set, test_set = problem()
    hp = Hyperparams(lr=0.5, epochs=10)
    W1, W2, rngs = fresh([0, 1])
    W1[1, 0, 0] = np.inf
    result = train(W1, W2, train_set, test_set, hp, rngs)
    W1s, W2s, rngs_s = fresh([0])
    alone = train(W1s, W2s, train_set, test_set, hp, rngs_s)
    assert result.diverged_at == [None, 0]
    assert np.allclose(result.W1[0], alone.W1[0], rtol=0, atol=1e-12)
    assert result.history.epochs == list(range(11))


def test_runs_are_bit_identical(striping):
    """Same inputs, same bits: the threads' scheduling does not enter the result."""
    train_set, test_set = problem(n=200)
    hp = Hyperparams(lr=0.5, epochs=40, l2=1e-3)
    results = []
    for _ in range(3):
        W1, W2, rngs = fresh([8, 9])
        results.append(train(W1, W2, train_set, test_set, hp, rngs))
    for other in results[1:]:
        assert np.array_equal(other.W1, results[0].W1) and np.array_equal(other.W2, results[0].W2)
        assert np.array_equal(other.history.as_arrays()[1], results[0].history.as_arrays()[1])


def test_float32_follows_float64(striping):
    train_set, test_set = problem(n=200)
    hp = Hyperparams(lr=0.5, epochs=100)
    W1, W2, rngs = fresh([5])
    r64 = train(W1, W2, train_set, test_set, hp, rngs)
    W1f, W2f, rngs_f = fresh([5], dtype=np.float32)
    cast = lambda pair: tuple(a.astype(np.float32) for a in pair)  # noqa: E731
    r32 = train(W1f, W2f, cast(train_set), cast(test_set), hp, rngs_f)
    assert r32.W1.dtype == np.float32
    c64, c32 = r64.history.as_arrays()[1], r32.history.as_arrays()[1]
    assert np.max(np.abs(c32 - c64) / c64) < 1e-4
