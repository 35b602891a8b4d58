"""How a report arranges runs: swept keys and their values in a stable order, and the groups of
runs that differ only by seed (summarised as mean ± std, like a batched run's own metrics)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnexp.report.records import SEED_KEYS, Curve, RunRecord


def design_keys(axes: list[str]) -> list[str]:
    """The swept keys that change the setting (seed keys left out)."""
    return [key for key in axes if key not in SEED_KEYS]


def value_order(value: str) -> tuple:
    """Sort key of a param value: numbers by value first, then other text alphabetically."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def ordered(values: set[str]) -> list[str]:
    """Param values in a stable, human order (see ``value_order``)."""
    return sorted(values, key=value_order)


def short(key: str) -> str:
    """``model.hidden`` → ``hidden``: the last part of a dotted key, for legends."""
    return key.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class SeedGroup:
    """Runs of one setting over several seeds: its label and mean ± std curves by split."""

    label: str
    runs: list[RunRecord]
    curves: dict[str, Curve]


def seed_groups(records: list[RunRecord], keys: list[str]) -> list[SeedGroup]:
    """Settings seen over several seeds: a batched run by itself, or several runs whose params
    differ only in SEED_KEYS (their curves averaged over the epochs they share)."""
    by_setting: dict[tuple, list[RunRecord]] = {}
    for record in records:
        if record.curves:
            setting = tuple(sorted((k, v) for k, v in record.params.items() if k not in SEED_KEYS))
            by_setting.setdefault(setting, []).append(record)
    groups = []
    for runs in by_setting.values():
        label = " ".join(f"{short(k)}={runs[0].params.get(k, '')}" for k in keys) or runs[0].name
        if len(runs) > 1:
            curves = {split: _across(runs, split) for split in ("train", "test")}
            groups.append(SeedGroup(f"{label} ({len(runs)} runs)", runs, curves))
        elif runs[0].seeds > 1:
            label = f"{label} ({runs[0].seeds} seeds)"
            groups.append(SeedGroup(label, runs, runs[0].curves))
    return sorted(groups, key=lambda g: _sort_key(g.runs[0], keys))


def _across(runs: list[RunRecord], split: str) -> Curve:
    return mean_curve([r.curves[split] for r in runs if split in r.curves])


def mean_curve(curves: list[Curve]) -> Curve:
    """Mean ± std of ``curves`` at the steps they all share."""
    steps = sorted(set.intersection(*(set(c.steps.tolist()) for c in curves)))
    rows = [
        [dict(zip(c.steps.tolist(), c.values.tolist(), strict=True))[s] for s in steps]
        for c in curves
    ]
    values = np.array(rows)
    return Curve(np.array(steps), values.mean(axis=0), values.std(axis=0))


def _sort_key(record: RunRecord, keys: list[str]) -> tuple:
    return tuple(value_order(record.params.get(k, "")) for k in keys)
