"""``nnexp runs list EXPERIMENT``: an experiment's runs (sweep parents left out) as rows of
params and final metrics, filtered, sorted, or grouped by keys into means with 95 % t-intervals,
written as an aligned table, CSV or JSON, so scripts read results without MLflow queries."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nnexp.errors import UserError
from nnexp.report.groups import value_order
from nnexp.report.records import RunRecord, metric_names, record_of
from nnexp.report.stats import mean_interval
from nnexp.report.target import DERIVED
from nnexp.tracking.queries import search_all
from nnexp.tracking.vocabulary import RUN_TYPE_TAG

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

FORMATS = ("table", "csv", "json")
#: ``KEY=VALUE``, ``KEY!=VALUE``, ``KEY<NUMBER``, ``KEY>NUMBER`` (also ``<=``, ``>=``).
FILTER = re.compile(r"(?P<key>[^=!<>\s]+)\s*(?P<op>!=|<=|>=|=|<|>)\s*(?P<value>.*)")
FIELDS = ("run_id", "name", "status")


@dataclass(frozen=True)
class Listing:
    """Rows of one listing: column names and, per row, a value (str or float) per column."""

    columns: list[str]
    rows: list[dict[str, str | float | int]]


def read_experiment(client: MlflowClient, name: str) -> list[RunRecord]:
    """The experiment's runs that are not sweep parents, read with a paged search (no metric
    history), oldest config hash first."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        known = ", ".join(sorted(e.name for e in client.search_experiments())) or "none"
        raise UserError(f"no MLflow experiment named {name!r} (there are: {known})")
    runs = search_all(client, [experiment.experiment_id])
    return [record_of(run) for run in runs if run.data.tags.get(RUN_TYPE_TAG) != "sweep"]


def swept(records: list[RunRecord]) -> list[str]:
    """Params whose values differ between the runs (derived data sizes left out), sorted."""
    keys = sorted({k for r in records for k in r.params if k not in DERIVED})
    return [k for k in keys if len({r.params.get(k) for r in records}) > 1]


def field(record: RunRecord, key: str) -> str | float | int:
    """``key`` of a run: run_id, name, status, a metric's final value or a param (or "")."""
    if key in FIELDS:
        return getattr(record, key)
    if key in record.finals:
        return record.metric(key)
    return record.params.get(key, "")


def known_keys(records: list[RunRecord]) -> set[str]:
    """Every key a filter, sort or group may name."""
    return {*FIELDS, *metric_names(records), *(k for r in records for k in r.params)}


def _check_key(key: str, records: list[RunRecord], option: str) -> None:
    if key not in known_keys(records):
        names = ", ".join([*FIELDS, *metric_names(records), *swept(records)])
        raise UserError(f"{option} {key!r} names no param, metric or field of these runs ({names})")


def apply_filter(records: list[RunRecord], expression: str) -> list[RunRecord]:
    """The runs for which ``expression`` (``KEY=VALUE``, ``!=``, ``<``, ``>``, ``<=``, ``>=``)
    holds; ``=`` on a number compares numbers (``optim.lr=1`` matches ``1.0``)."""
    found = FILTER.fullmatch(expression.strip())
    if found is None:
        raise UserError(
            f"--filter {expression!r} is not KEY=VALUE (or !=, <, >, <=, >=), "
            "e.g. --filter model.hidden=4 or --filter test_cost<0.01"
        )
    key, op, wanted = found["key"], found["op"], found["value"].strip()
    _check_key(key, records, "--filter")
    number = _number(wanted)
    if op in ("<", ">", "<=", ">=") and number is None:
        raise UserError(f"--filter {expression!r}: {op} needs a number after it")
    return [r for r in records if _holds(field(r, key), op, wanted, number)]


def _number(text: str | float | int) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _holds(value: str | float | int, op: str, wanted: str, number: float | None) -> bool:
    have = _number(value) if value != "" else None
    if op in ("=", "!="):
        same = have == number if have is not None and number is not None else value == wanted
        return same if op == "=" else not same
    if have is None or math.isnan(have):
        return False
    return {"<": have < number, ">": have > number, "<=": have <= number, ">=": have >= number}[op]


def sort_records(records: list[RunRecord], key: str) -> list[RunRecord]:
    """By ``key`` ascending (``-key`` descending) as numbers; text after numbers, in text order;
    missing values last."""
    descending = key.startswith("-")
    name = key.removeprefix("-")
    _check_key(name, records, "--sort")

    def order(record: RunRecord) -> tuple:
        value = field(record, name)
        number = _number(value) if value != "" else None
        if number is not None and not math.isnan(number):
            return (0, -number if descending else number, "")
        return (1 if value != "" else 2, 0.0, str(value))

    return sorted(records, key=order)


def rows_of(records: list[RunRecord], keys: list[str]) -> Listing:
    """One row per run: run_id, name, status, the params ``keys``, the final metrics."""
    columns = [*FIELDS, *keys, *metric_names(records)]
    return Listing(columns, [{c: field(r, c) for c in columns} for r in records])


def grouped(records: list[RunRecord], keys: list[str]) -> Listing:
    """One row per value of ``keys``: how many runs and replicates, and per final metric the
    mean with its 95 % t-interval over the replicates (seeds) of every run in the group."""
    for key in keys:
        _check_key(key, records, "--group-by")
    metrics = metric_names(records)
    groups: dict[tuple, list[RunRecord]] = {}
    for record in records:
        groups.setdefault(tuple(str(field(record, k)) for k in keys), []).append(record)
    columns = [*keys, "runs"]
    for metric in metrics:
        columns += [f"{metric}_n", f"{metric}_mean", f"{metric}_low", f"{metric}_high"]
    rows = []
    for values in sorted(groups, key=lambda vs: tuple(value_order(v) for v in vs)):
        row: dict[str, str | float | int] = dict(zip(keys, values, strict=True))
        row["runs"] = len(groups[values])
        for metric in metrics:
            found = mean_interval(
                [v for r in groups[values] for v in r.replicates(metric).values()]
            )
            row |= {
                f"{metric}_n": found.n,
                f"{metric}_mean": found.mean,
                f"{metric}_low": found.low,
                f"{metric}_high": found.high,
            }
        rows.append(row)
    return Listing(columns, rows)


def render(listing: Listing, form: str) -> str:
    """The listing as ``table`` (aligned text), ``csv`` or ``json`` (a list of objects; NaN as
    null)."""
    if form == "json":
        rows = [{c: _json_value(row.get(c, "")) for c in listing.columns} for row in listing.rows]
        return json.dumps(rows, indent=1) + "\n"
    exact = form == "csv"
    cells = [[_text(row.get(c, ""), exact) for c in listing.columns] for row in listing.rows]
    if exact:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([listing.columns, *cells])
        return buffer.getvalue()
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(listing.columns)]
    lines = [listing.columns, ["-" * w for w in widths], *cells]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in lines
    )


def _text(value: str | float | int, exact: bool = False) -> str:
    """A cell: a float with 6 significant digits (``exact``: all of them), NaN empty."""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if exact:
            return repr(value)
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    return " ".join(str(value).split())


def _json_value(value: str | float | int) -> str | float | int | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value
