"""A dataset as the core sees it: scaled train and test arrays, plus the scalers that undo it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from nnexp.data.scaling import Array, Scaler, min_max, standardize


@dataclass(frozen=True)
class Dataset:
    """Scaled splits (X (N, d), y (N, k)) and the scalers fitted on the training split."""

    name: str
    X_train: Array
    y_train: Array
    X_test: Array
    y_test: Array
    x_scaler: Scaler
    y_scaler: Scaler
    feature_names: list[str] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)

    @property
    def d(self) -> int:
        """Inputs per row."""
        return self.X_train.shape[1]

    @property
    def k(self) -> int:
        """Outputs per row."""
        return self.y_train.shape[1]

    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the scaled arrays: equal digests, equal data."""
        sha = hashlib.sha256()
        for array in (self.X_train, self.y_train, self.X_test, self.y_test):
            sha.update(str(array.shape).encode())
            sha.update(np.ascontiguousarray(array, np.float64).tobytes())
        return sha.hexdigest()[:16]

    def summary(self) -> dict[str, int | str]:
        """Sizes and digest, for parameters, tags and reports."""
        return {
            "n_train": len(self.X_train),
            "n_test": len(self.X_test),
            "d": self.d,
            "k": self.k,
            "digest": self.digest(),
        }


def split_and_scale(
    name: str,
    X: Array,
    y: Array,
    test_fraction: float,
    rng: np.random.Generator,
    feature_names: list[str],
    target_names: list[str],
) -> Dataset:
    """Shuffle rows with ``rng``, hold out round(N · test_fraction) (at least one row each side),
    standardise inputs and min-max the targets into [0, 1], both on training statistics."""
    y = y.reshape(len(y), -1)
    n_test = min(max(round(len(X) * test_fraction), 1), len(X) - 1)
    order = rng.permutation(len(X))
    test, train = order[:n_test], order[n_test:]
    x_scaler, y_scaler = standardize(X[train]), min_max(y[train])
    return Dataset(
        name=name,
        X_train=x_scaler.transform(X[train]),
        y_train=y_scaler.transform(y[train]),
        X_test=x_scaler.transform(X[test]),
        y_test=y_scaler.transform(y[test]),
        x_scaler=x_scaler,
        y_scaler=y_scaler,
        feature_names=feature_names,
        target_names=target_names,
    )
