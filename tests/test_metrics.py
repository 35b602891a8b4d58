"""The named metrics: accuracy, training dynamics and best-value summaries against hand
computations, and which runs record which."""

import numpy as np
import pytest

from nnexp.core import (
    METRICS,
    Hyperparams,
    forward,
    metric_names,
    reference,
    train,
)
from nnexp.core.training import History
from nnexp.data.registry import REGISTRY
from test_training import fresh, problem


def labels(y, k):
    return np.argmax(y, axis=-1) if k > 1 else (y[:, 0] >= 0.5).astype(int)


@pytest.mark.parametrize("k", [1, 3])
def test_accuracy_is_the_share_of_rows_whose_class_is_predicted(k):
    """argmax over k > 1 outputs, ŷ ≥ 0.5 for k = 1, at every recorded epoch, per copy."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 3))
    y = np.eye(k)[rng.integers(0, k, 50)] if k > 1 else rng.integers(0, 2, (50, 1)).astype(float)
    record = metric_names(classification=True)
    W1, W2, rngs = fresh([0, 1], k=k)
    W1_start, W2_start = W1.copy(), W2.copy()
    hp = Hyperparams(lr=0.5, epochs=6)
    result = train(W1, W2, (X, y), (X[:20], y[:20]), hp, rngs, record_every=6, record=record)
    assert list(result.history.values) == record
    for row, (V1, V2) in enumerate([(W1_start, W2_start), (result.W1, result.W2)]):
        for name, (Xs, ys) in [("train_accuracy", (X, y)), ("test_accuracy", (X[:20], y[:20]))]:
            predicted = [labels(out, k) for out in forward(Xs, V1, V2)]
            expected = [np.mean(p == labels(ys, k)) for p in predicted]
            assert result.history.metric(name)[row].tolist() == expected


def test_dynamics_are_the_norms_and_the_saturated_share_by_hand():
    """At a recorded epoch: ‖∂C/∂W‖ (the slides' gradient on all training rows, λ included),
    ‖W‖, and the share of a2 outside [0.01, 0.99]."""
    (X, y), test_set = problem()
    W1, W2, rngs = fresh([0])
    W1 *= 4  # some hidden units saturate
    start = W1[0].copy(), W2[0].copy()
    names = metric_names(dynamics=True)
    hp = Hyperparams(lr=0.5, epochs=3, l2=0.01, batch_size=16)
    result = train(W1, W2, (X, y), test_set, hp, rngs, record_every=3, record=names)
    for row, (V1, V2) in enumerate([start, (result.W1[0], result.W2[0])]):
        _, g1, g2 = reference.cost_and_gradients(X, y, V1, V2, 0.01, 1 / len(X))
        a2 = reference.sigmoid(X @ V1)
        expected = {
            "grad_norm_W1": np.linalg.norm(g1),
            "grad_norm_W2": np.linalg.norm(g2),
            "weight_norm_W1": np.linalg.norm(V1),
            "weight_norm_W2": np.linalg.norm(V2),
            "saturated_fraction": np.mean((a2 < 0.01) | (a2 > 0.99)),
        }
        for name, value in expected.items():
            assert result.history.metric(name)[row, 0] == pytest.approx(value, rel=1e-12)
    assert 0 < result.history.metric("saturated_fraction")[0, 0] < 1


def test_summaries_are_the_best_value_and_its_first_epoch_per_copy():
    history = History(epochs=[0, 5, 10, 12])
    history.values["train_cost"] = [
        np.array(v) for v in ([3.0, 1.0], [2.0, 1.0], [2.5, np.nan], [np.nan, np.nan])
    ]
    history.values["test_cost"] = [np.array([np.nan, np.nan])] * 4
    history.values["test_accuracy"] = [
        np.array(v) for v in ([0.1, 0.2], [0.5, 0.2], [0.5, 0.9], [0.4, 0.1])
    ]
    history.values["grad_norm_W1"] = [np.array([1.0, 1.0])] * 4
    found = history.summaries()
    assert found["best_train_cost"].tolist() == [2.0, 1.0]
    assert found["best_train_cost_epoch"].tolist() == [5, 0]
    assert found["best_test_accuracy"].tolist() == [0.5, 0.9]
    assert found["best_test_accuracy_epoch"].tolist() == [5, 10]
    assert np.isnan(found["best_test_cost"]).all() and np.isnan(found["best_test_cost_epoch"]).all()
    assert not any("grad_norm" in key for key in found)  # a norm has no best


def test_which_runs_record_which_metrics():
    assert metric_names() == ["train_cost", "test_cost"]
    assert metric_names(classification=True)[2:] == ["train_accuracy", "test_accuracy"]
    dynamics = metric_names(dynamics=True)[2:]
    assert dynamics == [
        "grad_norm_W1",
        "grad_norm_W2",
        "weight_norm_W1",
        "weight_norm_W2",
        "saturated_fraction",
    ]
    assert set(metric_names(True, True)) == set(METRICS)
    assert {name for name, entry in REGISTRY.items() if entry.classification} == {
        "xor",
        "breast_cancer",
        "digits",
    }


def test_recording_nothing_extra_makes_no_extra_pass(monkeypatch):
    """Off (costs only), training calls the kernel exactly as before: no forward pass beyond the
    loop's own train and test costs."""
    from nnexp.core import metrics

    calls = []
    monkeypatch.setattr(metrics, "raw_forward_sums", lambda *a: calls.append(a))
    train_set, test_set = problem()
    W1, W2, rngs = fresh([0])
    train(W1, W2, train_set, test_set, Hyperparams(lr=0.5, epochs=5), rngs)
    assert calls == []


def test_an_unknown_metric_is_refused():
    train_set, test_set = problem()
    W1, W2, rngs = fresh([0])
    with pytest.raises(ValueError, match="unknown metric\\(s\\) \\['loss'\\]"):
        train(W1, W2, train_set, test_set, Hyperparams(lr=0.5, epochs=1), rngs, record=["loss"])
