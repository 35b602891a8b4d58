"""Column-wise affine scaling fitted on the training split: z = (x − offset) / scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class Scaler:
    """z = (x − offset) / scale per column; ``inverse`` maps back to original units."""

    offset: Array
    scale: Array

    def transform(self, x: Array) -> Array:
        """(x − offset) / scale."""
        return (x - self.offset) / self.scale

    def inverse(self, z: Array) -> Array:
        """z · scale + offset."""
        return z * self.scale + self.offset

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists, for JSON and for the served model."""
        return {"offset": self.offset.tolist(), "scale": self.scale.tolist()}


def divide_by(scale: Array) -> Scaler:
    """z = x / scale, the lecture's scaling (inputs by their maxima, scores by 100)."""
    scale = np.asarray(scale, float)
    return Scaler(np.zeros_like(scale), scale)


def standardize(x: Array) -> Scaler:
    """z = (x − mean) / std per column; a constant column keeps scale 1."""
    std = x.std(axis=0)
    return Scaler(x.mean(axis=0), np.where(std > 0, std, 1.0))


def min_max(y: Array) -> Scaler:
    """z = (y − min) / (max − min) per column, so training targets fill [0, 1]."""
    low, high = y.min(axis=0), y.max(axis=0)
    return Scaler(low, np.where(high > low, high - low, 1.0))
