"""`nnexp reproduce`'s verdict and exit status: identical (0), equivalent within a tolerance (3)
or different (1); 2 stays bad input (``nnexp.errors``). Light to import (numpy loads on use)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: Every weight and every metric point bit for bit the same.
IDENTICAL = 0
#: Some value differs by more than the tolerance (also: an array or metric missing, a shape).
DIFFERENT = 1
#: Not bit for bit, but every value within the tolerance.
EQUIVALENT = 3

#: The largest deviation (relative to the array's largest magnitude, at least 1) still called
#: equivalent, by the run's float type: ~4500 machine epsilons of it, 1000 times what rounding
#: differences grow to over hundreds of epochs (~1e-15 in float64, ~1e-6 in float32).
DEFAULT_TOLERANCES = {"float64": 1e-12, "float32": 5e-4}


def default_tolerance(dtype: str) -> float:
    """The tolerance of a run trained in ``dtype`` (``model.dtype``)."""
    return DEFAULT_TOLERANCES[dtype]


def deviation(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """max |a − b| / max(1, max |a|): 0 when bit-identical, inf when only one exists, the shapes
    differ or only one of a pair is NaN (NaN in both places counts as equal)."""
    import numpy as np

    if a is None or b is None or a.shape != b.shape:
        return float("inf")
    if a.dtype == b.dtype and a.tobytes() == b.tobytes():
        return 0.0
    a, b = a.astype(np.float64), b.astype(np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if (nan_a != nan_b).any():
        return float("inf")
    delta = np.abs(np.where(nan_a, 0.0, a - b))
    scale = max(1.0, float(np.max(np.abs(np.where(nan_a, 0.0, a)), initial=0.0)))
    return float(np.max(delta, initial=0.0)) / scale


@dataclass(frozen=True)
class Verdict:
    """The exit status and the closing line of `nnexp reproduce`."""

    code: int
    line: str


def verdict(
    original: str,
    new: str,
    deviations: Sequence[float],
    reasons: Sequence[str],
    tolerance: float,
) -> Verdict:
    """IDENTICAL when every deviation is 0, EQUIVALENT when the largest is ≤ ``tolerance`` (with
    the ``reasons`` bit-identity could not be expected, or a note that none was found), else
    DIFFERENT."""
    largest = max(deviations, default=0.0)
    if largest == 0.0:
        return Verdict(IDENTICAL, f"identical: run {new} reproduces {original} bit for bit")
    if largest <= tolerance:
        why = "; ".join(reasons) or "no recorded cause: everything that decides the bits matched"
        return Verdict(
            EQUIVALENT,
            f"equivalent within {tolerance:g} (largest deviation {largest:.2g}; {why}): "
            f"run {new} reproduces {original}",
        )
    return Verdict(DIFFERENT, f"different: run {new} does not reproduce {original}")
