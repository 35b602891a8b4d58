"""``nnexp diff A B``: two runs, or two sweeps by their parent runs, side by side: only the config
keys that differ, each metric's final and best values with B − A, and a figure overlaying their
curves. A sweep's values are over its children: the mean final value (with its 95 % t-interval
over their seeds) and its best child's; its curves the mean ± std over children, from at most
CURVE_RUNS of them (whole settings evenly spaced in rank, as in a report)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nnexp.errors import UserError
from nnexp.report.groups import mean_curve, ordered
from nnexp.report.records import (
    CURVE_RUNS,
    Curve,
    RunRecord,
    cost_curves,
    curve_sample,
    histories,
    maximized,
    metric_names,
    record_of,
)
from nnexp.report.stats import mean_interval
from nnexp.report.target import DERIVED, RUN_ID, get_run, is_sweep
from nnexp.tracking.queries import children
from nnexp.tracking.vocabulary import latest_attempts

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class Side:
    """One side of a diff: the run (a sweep's parent), its records (the run itself, or the
    sweep's children) and, for a sweep, the swept keys' specs."""

    run: Run
    records: list[RunRecord]
    sweep: bool

    @property
    def label(self) -> str:
        """``run <id> (<name>)`` or ``sweep <id> (<name>, N runs)``."""
        info = self.run.info
        if self.sweep:
            return f"sweep {info.run_id} ({info.run_name}, {len(self.records)} runs)"
        return f"run {info.run_id} ({info.run_name})"

    def config(self) -> dict[str, str]:
        """Key → value (a sweep: its specs, and its children's values joined by ", ")."""
        if not self.sweep:
            return {k: v for k, v in self.records[0].params.items() if k not in DERIVED}
        keys = {k for r in self.records for k in r.params if k not in DERIVED}
        found = {k: ", ".join(ordered({r.params.get(k, "") for r in self.records})) for k in keys}
        return found | {f"sweep {k}": v for k, v in self.run.data.params.items()}

    def final(self, metric: str) -> float:
        """The run's final value; a sweep's mean over its children's replicates."""
        values = [v for r in self.records for v in r.replicates(metric).values()]
        return mean_interval(values).mean if self.sweep else self.records[0].metric(metric)

    def best(self, metric: str) -> float:
        """The run's best value on its curve (or ``best_*``); a sweep's best child's final."""
        if not self.sweep:
            return self.records[0].best_of(metric)[0]
        finals = [r.metric(metric) for r in self.records]
        finite = [v for v in finals if math.isfinite(v)]
        if not finite:
            return math.nan
        return max(finite) if maximized(metric) else min(finite)


@dataclass(frozen=True)
class Diff:
    """What differs between A and B: config key → (A's, B's value), metric → (A, B, B − A) of the
    final and of the best value."""

    a: Side
    b: Side
    config: dict[str, tuple[str, str]]
    final: dict[str, tuple[float, float, float]]
    best: dict[str, tuple[float, float, float]]

    def as_json(self) -> dict:
        """A dict for ``--format json``: NaN as None."""

        def triple(values: tuple[float, float, float]) -> dict:
            return dict(zip(("a", "b", "b_minus_a"), map(_finite, values), strict=True))

        return {
            "a": {
                "run_id": self.a.run.info.run_id,
                "sweep": self.a.sweep,
                "runs": len(self.a.records),
            },
            "b": {
                "run_id": self.b.run.info.run_id,
                "sweep": self.b.sweep,
                "runs": len(self.b.records),
            },
            "config": {k: {"a": a, "b": b} for k, (a, b) in self.config.items()},
            "final": {k: triple(v) for k, v in self.final.items()},
            "best": {k: triple(v) for k, v in self.best.items()},
        }

    def as_text(self) -> str:
        """Aligned lines: the two sides, the differing keys, the metrics with B − A."""
        lines = [f"A: {self.a.label}", f"B: {self.b.label}", ""]
        if self.config:
            width = max(len(k) for k in self.config)
            lines.append("config keys that differ (A → B):")
            lines += [
                f"  {k.ljust(width)}  {a or '—'} → {b or '—'}" for k, (a, b) in self.config.items()
            ]
        else:
            lines.append("config: identical")
        titles = (
            ("final (mean over runs and seeds)", "best (best run)")
            if self.a.sweep
            else (
                "final",
                "best",
            )
        )
        for title, table in zip(titles, (self.final, self.best), strict=True):
            if not table:
                continue
            width = max(len(k) for k in table)
            lines += ["", title, f"  {'':<{width}}  {'A':>11}  {'B':>11}  {'B − A':>11}"]
            lines += [
                f"  {k.ljust(width)}  " + "  ".join(f"{_number(v):>11}" for v in values)
                for k, values in table.items()
            ]
        return "\n".join(lines) + "\n"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _number(value: float) -> str:
    return f"{value:.5g}" if math.isfinite(value) else "—"


def side(client: MlflowClient, run_id: str) -> Side:
    """The run ``run_id`` names: a single run, or a sweep with its children's latest attempts."""
    if not RUN_ID.fullmatch(run_id):
        raise UserError(f"{run_id!r} is not a run id (32 hexadecimal digits); see nnexp runs list")
    run = get_run(client, run_id)
    if not is_sweep(run):
        record = record_of(run)
        record.curves = cost_curves(client, record)
        return Side(run, [record], False)
    found = children(client, run.info.experiment_id, run_id)
    records = [record_of(r) for r in latest_attempts(found).values()]
    if not records:
        raise UserError(f"sweep {run_id} has no child runs to compare")
    return Side(run, records, True)


def diff(client: MlflowClient, first: str, second: str) -> Diff:
    """The Diff of runs (or sweeps) ``first`` and ``second``; a run against a sweep is refused."""
    a, b = side(client, first), side(client, second)
    if a.sweep != b.sweep:
        which = first if a.sweep else second
        raise UserError(
            f"{which} is a sweep and the other a single run; compare two runs or two sweeps "
            "(a sweep's children are listed by nnexp runs list)"
        )
    config_a, config_b = a.config(), b.config()
    config = {
        k: (config_a.get(k, ""), config_b.get(k, ""))
        for k in sorted(set(config_a) | set(config_b))
        if config_a.get(k) != config_b.get(k)
    }
    metrics = metric_names(a.records + b.records)
    final = {m: _delta(a.final(m), b.final(m)) for m in metrics}
    best = {m: _delta(a.best(m), b.best(m)) for m in metrics}
    return Diff(a, b, config, final, {m: v for m, v in best.items() if not all(map(math.isnan, v))})


def _delta(a: float, b: float) -> tuple[float, float, float]:
    return a, b, b - a


def curves(client: MlflowClient, found: Side, metric: str) -> Curve | None:
    """The side's curve of ``metric``: the run's own (a batched run's mean ± std), or a sweep's
    mean ± std over the sampled children at the epochs they share."""
    drawn = curve_sample(found.records, CURVE_RUNS) if found.sweep else found.records
    per_run = [c for c in _curves(client, drawn, metric) if c is not None]
    if not per_run:
        return None
    if not found.sweep:
        return per_run[0]
    return mean_curve(per_run)


def _curves(client: MlflowClient, records: list[RunRecord], metric: str) -> list[Curve | None]:
    """Each record's curve of ``metric`` (a batched run's mean ± std), None without one; each
    metric read for all the records at once."""
    batched = [r.run_id for r in records if metric in r.stds]
    single = [r.run_id for r in records if metric not in r.stds and metric in r.finals]
    means = histories(client, batched, f"{metric}_mean") if batched else {}
    stds = histories(client, batched, f"{metric}_std") if batched else {}
    plain = histories(client, single, metric) if single else {}
    found: list[Curve | None] = []
    for record in records:
        if record.run_id in means:
            steps, mean = means[record.run_id]
            _, std = stds[record.run_id]
            found.append(Curve(steps, mean, std if len(std) == len(steps) else None))
        else:
            found.append(Curve(*plain[record.run_id]) if record.run_id in plain else None)
    return found


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_figure_path(path: Path) -> None:
    """Refuse a figure path that is not ``*.png``, lies in a missing folder, or would replace
    anything but a PNG file (a previous figure)."""
    if path.suffix.lower() != ".png":
        raise UserError(f"--out {path} must name a .png file, e.g. --out diff.png")
    if not path.parent.is_dir():
        raise UserError(f"--out {path}: folder {path.parent} does not exist; create it first")
    if path.is_symlink() or (path.exists() and not _is_png(path)):
        raise UserError(f"--out {path} exists and is not a PNG figure; choose another name")


def _is_png(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return path.is_file() and file.read(len(PNG_MAGIC)) == PNG_MAGIC
    except OSError:
        return False


def figure(client: MlflowClient, result: Diff, path: Path) -> Path:
    """A PNG of each metric's curves, A against B (a sweep's mean with a ± std band), written
    to a temporary file beside ``path`` and moved over it."""
    from nnexp.report.figures import overlay  # matplotlib only when a figure is asked for

    metrics = metric_names(result.a.records + result.b.records)
    drawn = {
        m: [(label, curves(client, s, m)) for label, s in (("A", result.a), ("B", result.b))]
        for m in metrics
    }
    titles = {label: _short(s) for label, s in (("A", result.a), ("B", result.b))}
    work = path.with_name(f".{path.name}.tmp")
    try:
        overlay(drawn, titles, work)
        work.replace(path)
    except OSError as err:
        raise UserError(f"cannot write --out {path}: {err.strerror or err}") from None
    finally:
        work.unlink(missing_ok=True)
    return path


def _short(found: Side) -> str:
    if found.sweep:
        return f"sweep {found.run.info.run_id}, {len(found.records)} runs: mean ± std"
    return f"run {found.run.info.run_id}"
