"""The built-in datasets: the lecture's sleep/study scores, XOR, a noisy sine, a synthetic
teacher network, and scikit-learn's bundled diabetes, breast cancer and digits (no download)."""

from __future__ import annotations

from functools import cache

import numpy as np

from nnexp.core import sigmoid
from nnexp.data.dataset import Dataset, split_and_scale
from nnexp.data.scaling import divide_by

#: "Neural Networks Demystified": (hours of sleep, hours of study) → test score.
SLEEP_STUDY_TRAIN_X = np.array([[3, 5], [5, 1], [10, 2], [6, 1.5]], float)
SLEEP_STUDY_TRAIN_Y = np.array([[75], [82], [93], [70]], float)
SLEEP_STUDY_TEST_X = np.array([[4, 5.5], [4.5, 1], [9, 2.5], [6, 2]], float)
SLEEP_STUDY_TEST_Y = np.array([[70], [89], [85], [75]], float)


def sleep_study() -> Dataset:
    """The lecture's fixed split: X divided by the training column maxima (10, 5), train and test
    alike, scores by 100. Nothing random."""
    x_scaler = divide_by(SLEEP_STUDY_TRAIN_X.max(axis=0))
    y_scaler = divide_by([100.0])
    return Dataset(
        name="sleep_study",
        X_train=x_scaler.transform(SLEEP_STUDY_TRAIN_X),
        y_train=y_scaler.transform(SLEEP_STUDY_TRAIN_Y),
        X_test=x_scaler.transform(SLEEP_STUDY_TEST_X),
        y_test=y_scaler.transform(SLEEP_STUDY_TEST_Y),
        x_scaler=x_scaler,
        y_scaler=y_scaler,
        feature_names=["sleep_hours", "study_hours"],
        target_names=["score"],
    )


def xor() -> Dataset:
    """The four XOR points, unscaled; the test split is the same four points."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    y = np.array([[0], [1], [1], [0]], float)
    identity_x, identity_y = divide_by([1.0, 1.0]), divide_by([1.0])
    return Dataset("xor", X, y, X.copy(), y.copy(), identity_x, identity_y, ["a", "b"], ["xor"])


def sine(n: int, noise: float, test_fraction: float, rng: np.random.Generator) -> Dataset:
    """y = sin(x) + noise · N(0, 1) for x ~ U(0, 2π), n points."""
    x = rng.uniform(0.0, 2 * np.pi, (n, 1))
    y = np.sin(x) + noise * rng.standard_normal((n, 1))
    return split_and_scale("sine", x, y, test_fraction, rng, ["x"], ["y"])


def synthetic(
    n: int, d: int, k: int, noise: float, test_fraction: float, rng: np.random.Generator
) -> Dataset:
    """X ~ N(0, 1) of shape (n, d); y = σ(X A) + noise · N(0, 1) for a teacher A ~ N(0, 1/d)."""
    X = rng.standard_normal((n, d))
    teacher = rng.standard_normal((d, k)) / np.sqrt(d)
    y = sigmoid(X @ teacher) + noise * rng.standard_normal((n, k))
    features = [f"x{i}" for i in range(d)]
    return split_and_scale(
        "synthetic", X, y, test_fraction, rng, features, [f"y{j}" for j in range(k)]
    )


def sklearn_bundled(name: str, test_fraction: float, rng: np.random.Generator) -> Dataset:
    """diabetes (442×10 → disease progression), breast_cancer (569×30 → malignant 0/1) or
    digits (1797×64 → one-hot of 10 classes), from the files scikit-learn ships."""
    X, y, features, targets = _bundled(name)
    return split_and_scale(name, X, y, test_fraction, rng, list(features), list(targets))


@cache
def _bundled(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """(X, y, feature names, target names) of a bundled dataset, read once per process (every
    job of a sweep on digits would parse its file again) and read-only."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    X, target = bunch.data.astype(float), bunch.target
    if name == "digits":
        y = np.eye(10)[target]
        targets = tuple(f"digit_{j}" for j in range(10))
    else:
        y = target.astype(float).reshape(-1, 1)
        targets = ("target",)
    features = tuple(
        str(f) for f in getattr(bunch, "feature_names", [f"x{i}" for i in range(X.shape[1])])
    )
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y, features, targets
