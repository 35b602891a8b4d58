"""The report's statistics against hand computations on small fixtures: Student-t quantiles
against published table values, the t-interval and the paired interval worked out by hand, the
importance shares of a 2 × 2 grid with two seeds, and on a random balanced grid the shares summing
to the variance a least-squares fit of the main effects and pairs explains."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest

from nnexp.report.stats import (
    importance,
    incomplete_beta,
    mean_interval,
    paired_interval,
    t_cdf,
    t_quantile,
)

#: t_{0.975, df} from a printed table (and scipy.stats.t.ppf to 12 digits).
T_TABLE = {
    1: 12.706204736174698,
    2: 4.302652729749464,
    4: 2.7764451051977934,
    9: 2.2621571627409915,
    29: 2.045229642132703,
    1000: 1.9623390808264074,
}


@pytest.mark.parametrize(("df", "expected"), sorted(T_TABLE.items()))
def test_t_quantile_matches_the_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, rel=1e-9)
    assert t_cdf(expected, df) == pytest.approx(0.975, abs=1e-10)


def test_incomplete_beta_special_cases():
    # I_x(1, 1) = x, I_x(a, 1) = x^a, and the symmetry I_x(a, b) = 1 − I_{1−x}(b, a).
    assert incomplete_beta(1.0, 1.0, 0.3) == pytest.approx(0.3, abs=1e-14)
    assert incomplete_beta(3.0, 1.0, 0.6) == pytest.approx(0.6**3, abs=1e-14)
    assert incomplete_beta(2.5, 0.5, 0.7) == pytest.approx(1 - incomplete_beta(0.5, 2.5, 0.3))
    assert t_cdf(0.0, 3) == 0.5 and t_cdf(-2.0, 5) == pytest.approx(1 - t_cdf(2.0, 5))


def test_mean_interval_is_the_t_interval():
    found = mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451051977934 * math.sqrt(2.5) / math.sqrt(5)  # t_{.975,4} · s/√n = 1.9632
    assert (found.mean, found.n) == (3.0, 5)
    assert found.low == pytest.approx(3.0 - half, abs=1e-12)
    assert found.high == pytest.approx(3.0 + half, abs=1e-12)
    assert found.half_width == pytest.approx(1.963243161, abs=1e-9)


def test_mean_interval_drops_non_finite_values_and_needs_two():
    assert mean_interval([2.0, math.nan, 4.0, math.inf]).mean == 3.0
    single = mean_interval([7.0])
    assert single.mean == 7.0 and math.isnan(single.low) and single.n == 1
    assert mean_interval([]).n == 0


def test_paired_interval_is_the_interval_of_the_differences():
    first = [0.30, 0.25, 0.40, 0.35]
    second = [0.20, 0.20, 0.31, 0.25]
    # differences −0.10, −0.05, −0.09, −0.10: mean −0.085, s = 0.023805, t_{.975,3} = 3.182446
    found = paired_interval(first, second)
    assert found.mean == pytest.approx(-0.085)
    assert found.half_width == pytest.approx(3.182446305284263 * 0.0238047614 / 2, rel=1e-7)
    assert found.excludes_zero() and found.high < 0
    with pytest.raises(ValueError, match="equal lengths"):
        paired_interval([1.0], [1.0, 2.0])


def test_importance_of_a_two_by_two_grid_by_hand():
    # cells (A, B): (0,0) 1, 3 · (0,1) 4, 6 · (1,0) 5, 7 · (1,1) 12, 14; grand mean 6.5.
    # main A ∓3, main B ∓2.5, interaction ±1, seed noise ±1: var(y) = 9 + 6.25 + 1 + 1 = 17.25.
    cells = {("0", "0"): (1, 3), ("0", "1"): (4, 6), ("1", "0"): (5, 7), ("1", "1"): (12, 14)}
    settings = [{"A": a, "B": b} for (a, b), ys in cells.items() for _ in ys]
    y = [value for ys in cells.values() for value in ys]
    found = importance(settings, y)
    assert found.variance == pytest.approx(17.25)
    assert found.terms[("A",)] == pytest.approx(9 / 17.25)
    assert found.terms[("B",)] == pytest.approx(6.25 / 17.25)
    assert found.terms[("A", "B")] == pytest.approx(1 / 17.25)
    assert found.residual == pytest.approx(1 / 17.25)
    assert found.explained + found.residual == pytest.approx(1.0)


def test_importance_shares_sum_to_the_variance_explained_by_mains_and_pairs():
    generator = np.random.default_rng(7)
    levels = {"lr": ["0.5", "1", "2"], "l2": ["0", "1e-4"], "hidden": ["4", "8"]}
    settings, y = [], []
    for values in product(*levels.values()):
        setting = dict(zip(levels, values, strict=True))
        for _ in range(3):  # three seeds: the noise
            settings.append(setting)
            y.append(generator.normal())
    found = importance(settings, y)
    # The least-squares fit on one indicator per (pair of keys, cell) spans every main effect
    # and pair interaction: its R² is the explained variance.
    columns = [np.ones(len(y))]
    for first, second in [("lr", "l2"), ("lr", "hidden"), ("l2", "hidden")]:
        for a, b in product(levels[first], levels[second]):
            columns.append([float(s[first] == a and s[second] == b) for s in settings])
    design = np.array(columns, dtype=float).T
    target = np.array(y)
    fitted = design @ np.linalg.lstsq(design, target, rcond=None)[0]
    r2 = np.sum((fitted - target.mean()) ** 2) / np.sum((target - target.mean()) ** 2)
    assert found.explained == pytest.approx(r2, abs=1e-12)
    assert found.residual == pytest.approx(1 - r2, abs=1e-12)
    assert len(found.terms) == 3 + 3 and min(found.terms.values()) >= 0


def test_importance_without_spread_is_undefined():
    found = importance([{"a": "1"}, {"a": "2"}], [1.0, 1.0])
    assert found.terms == {} and math.isnan(found.residual)
