"""The report's statistics over runs: each setting's replicates (seeds) as a mean with its 95 %
t-interval, paired comparisons of one swept key's values against its first, and the functional
ANOVA importance of the swept keys. The arithmetic is in ``stats``; here runs become samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

from nnexp.report.groups import ordered, value_order
from nnexp.report.records import RunRecord
from nnexp.report.stats import Importance, Interval, importance, mean_interval, paired_interval


@dataclass(frozen=True)
class SettingStats:
    """One setting (its swept keys' values) and, per metric, the interval over its replicates."""

    values: dict[str, str]
    intervals: dict[str, Interval]


@dataclass(frozen=True)
class Comparison:
    """``key`` = ``value`` against ``key`` = ``baseline``, every other swept key and the
    replicate held equal: the interval of the paired differences (value − baseline)."""

    key: str
    baseline: str
    value: str
    difference: Interval


def _samples(records: list[RunRecord], keys: list[str], metric: str) -> list[tuple]:
    """(setting values, replicate, final value) of every replicate with a finite value."""
    found = []
    for record in records:
        values = tuple(record.params.get(key, "") for key in keys)
        for replicate, value in record.replicates(metric).items():
            if math.isfinite(value):
                found.append((values, replicate, value))
    return found


def setting_stats(
    records: list[RunRecord], keys: list[str], metrics: list[str]
) -> list[SettingStats]:
    """Each setting of ``keys`` with the mean and t-interval of each metric over its replicates,
    in the keys' value order."""
    pooled: dict[tuple, dict[str, list[float]]] = {}
    for metric in metrics:
        for values, _, value in _samples(records, keys, metric):
            pooled.setdefault(values, {}).setdefault(metric, []).append(value)
    order = sorted(pooled, key=lambda values: tuple(value_order(v) for v in values))
    return [
        SettingStats(
            dict(zip(keys, values, strict=True)),
            {metric: mean_interval(pooled[values].get(metric, [])) for metric in metrics},
        )
        for values in order
    ]


def comparisons(records: list[RunRecord], keys: list[str], metric: str) -> list[Comparison]:
    """For each swept key and each of its values after the first: the paired difference of
    ``metric`` against the first value, pairs matched on the other keys and the replicate."""
    samples = _samples(records, keys, metric)
    found = []
    for index, key in enumerate(keys):
        by_rest: dict[str, dict[tuple, float]] = {}
        for values, replicate, value in samples:
            rest = (*values[:index], *values[index + 1 :], replicate)
            by_rest.setdefault(values[index], {})[rest] = value
        levels = ordered(set(by_rest))
        for level in levels[1:]:
            shared = sorted(set(by_rest[levels[0]]) & set(by_rest[level]))
            if not shared:
                continue
            first = [by_rest[levels[0]][rest] for rest in shared]
            second = [by_rest[level][rest] for rest in shared]
            found.append(Comparison(key, levels[0], level, paired_interval(first, second)))
    return found


def key_importance(records: list[RunRecord], keys: list[str], metric: str) -> Importance:
    """Functional ANOVA of the final ``metric`` over the swept ``keys``, replicates as noise."""
    samples = _samples(records, keys, metric)
    settings = [dict(zip(keys, values, strict=True)) for values, _, _ in samples]
    return importance(settings, [value for _, _, value in samples])
