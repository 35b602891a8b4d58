"""The statistics a report states, as pure numpy functions: a mean with its 95 % t-interval, a
paired difference with its interval, and the functional-ANOVA importance of swept keys.

- t-interval: mean ± t_{0.975, n−1} · s/√n, with s the sample std (ddof 1); t from the exact
  Student-t distribution (inverse of the regularized incomplete beta, by bisection).
- paired difference: the t-interval of d_i = b_i − a_i over the pairs (a_i, b_i).
- importance: y = μ + Σ_k f_k(x_k) + Σ_{j<k} f_jk(x_j, x_k) + rest, where f_k is the mean of y
  at each value of key k less μ, and f_jk the mean of y in each (j, k) cell less μ, f_j and f_k.
  Each term's share is mean(f²)/var(y) over the observations; the residual share 1 − Σ shares
  holds higher interactions and the noise between seeds. On a balanced grid the terms are
  orthogonal, so Σ shares is the variance explained by the main effects and pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import combinations

import numpy as np

CONFIDENCE = 0.95


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        last = 1.0
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            last = c * d
            fraction *= last
        if abs(last - 1.0) < 1e-16:
            break
    return fraction


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 ≤ x ≤ 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` degrees of freedom: 1 − ½·I_{df/(df+t²)}(df/2, ½)
    for t ≥ 0, by symmetry below."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@cache
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (0.5 < p < 1), by
    bisection on t_cdf to double precision (about 0.7 ms; cached, as n repeats)."""
    if not 0.5 <= p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0.5 ≤ p < 1 and df > 0, got p={p}, df={df}")
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
    return 0.5 * (low + high)


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values and its 95 % t-interval [low, high] (NaN below two values)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        """t_{0.975, n−1} · s/√n."""
        return (self.high - self.low) / 2.0

    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of 0."""
        return self.low > 0.0 or self.high < 0.0


def mean_interval(values: Sequence[float]) -> Interval:
    """mean ± t_{0.975, n−1} · s/√n of the finite ``values``; NaN bounds for n < 2."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    n = len(finite)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(finite.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = t_quantile(0.5 + CONFIDENCE / 2.0, n - 1) * float(finite.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def paired_interval(first: Sequence[float], second: Sequence[float]) -> Interval:
    """The t-interval of the differences second_i − first_i over pairs where both are finite."""
    if len(first) != len(second):
        raise ValueError(f"paired values need equal lengths, got {len(first)} and {len(second)}")
    return mean_interval([b - a for a, b in zip(first, second, strict=True)])


@dataclass(frozen=True)
class Importance:
    """Shares of var(y) by term: ``terms`` maps a key or a pair of keys to its share; ``residual``
    is 1 − Σ shares; ``n`` observations, ``variance`` var(y) (ddof 0)."""

    terms: dict[tuple[str, ...], float]
    residual: float
    n: int
    variance: float

    @property
    def explained(self) -> float:
        """Σ of the terms' shares."""
        return float(sum(self.terms.values()))


def importance(settings: Sequence[dict[str, str]], y: Sequence[float]) -> Importance:
    """Functional ANOVA of ``y`` over the keys of ``settings`` (one dict of key → value per
    observation; replicates such as seeds are rows with the same setting): the share of var(y)
    of each key's main effect and each pair's interaction, terms in key order."""
    values = np.asarray(y, dtype=np.float64)
    keys = sorted({key for setting in settings for key in setting})
    n = len(values)
    centred = values - values.mean() if n else values
    variance = float(np.mean(centred**2)) if n else math.nan
    if n < 2 or not variance > 0.0:
        return Importance({}, math.nan, n, variance)
    codes = {key: _codes([s.get(key, "") for s in settings]) for key in keys}
    main = {key: _cell_means(centred, codes[key]) for key in keys}
    terms: dict[tuple[str, ...], float] = {}
    for key in keys:
        terms[(key,)] = float(np.mean(main[key] ** 2)) / variance
    for first, second in combinations(keys, 2):
        cell = codes[first] * (codes[second].max() + 1) + codes[second]
        pair = _cell_means(centred, cell) - main[first] - main[second]
        terms[(first, second)] = float(np.mean(pair**2)) / variance
    return Importance(terms, 1.0 - float(sum(terms.values())), n, variance)


def _codes(column: list[str]) -> np.ndarray:
    """Each value's index among the column's distinct values."""
    return np.unique(np.asarray(column, dtype=object).astype(str), return_inverse=True)[1]


def _cell_means(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each observation's cell mean, cells given by integer ``codes``."""
    sums = np.bincount(codes, weights=values)
    counts = np.bincount(codes)
    return (sums / counts)[codes]
