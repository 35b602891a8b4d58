"""Side-by-side timing: warm-up, then interleaved repeats, reported as min–median–max.

Contenders run round-robin (one call of each per round), so load from other processes that comes
and goes falls on all of them alike and their ratio stays meaningful on a shared machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Seconds per unit of work (e.g. per epoch), one value per repeat."""

    samples: tuple[float, ...]

    @property
    def min(self) -> float:
        """The fastest repeat: the least disturbed by other load."""
        return min(self.samples)

    @property
    def median(self) -> float:
        """The middle repeat."""
        return statistics.median(self.samples)

    @property
    def max(self) -> float:
        """The slowest repeat."""
        return max(self.samples)

    def spread(self) -> str:
        """'min–median–max' in a unit that suits the magnitude."""
        return "–".join(human_seconds(s) for s in (self.min, self.median, self.max))


def human_seconds(seconds: float) -> str:
    """3 significant figures in ns, µs, ms or s."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def compare(
    contenders: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    units: int = 1,
    settle: float = 0.0,
) -> dict[str, Timing]:
    """Time every contender ``repeats`` times, round-robin after ``warmup`` untimed rounds.

    Each sample is one call's wall time divided by ``units`` (the work units a call performs).
    ``settle`` seconds of sleep before each timed call let helper threads a contender left
    spinning (a BLAS's, which spin for ~0.1 s after work) go idle before the next one starts.
    """
    for _ in range(warmup):
        for run in contenders.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            time.sleep(settle)
            start = time.perf_counter()
            run()
            samples[name].append((time.perf_counter() - start) / units)
    return {name: Timing(tuple(values)) for name, values in samples.items()}


def ratio(numerator: Timing, denominator: Timing) -> float:
    """The median over rounds of numerator / denominator: both ran back to back in each round, so
    a round's ratio is little affected by load that changes between rounds."""
    return statistics.median(
        a / b for a, b in zip(numerator.samples, denominator.samples, strict=True)
    )
