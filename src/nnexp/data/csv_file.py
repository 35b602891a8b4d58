"""A numeric CSV file with a header row: named target column(s), every other column an input."""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

import numpy as np

from nnexp.data.dataset import Dataset, split_and_scale
from nnexp.errors import UserError
from nnexp.safety.files import regular_file


class DataError(UserError):
    """A dataset that cannot be used as given."""


def load_csv(
    path: Path | None,
    target: str | list[str] | None,
    test_fraction: float,
    rng: np.random.Generator,
) -> Dataset:
    """Read ``path``, split rows with ``rng`` and scale on the training split."""
    if path is None:
        raise DataError("dataset=csv needs dataset.path=FILE, a CSV file with a header row")
    header, rows = _read(path)
    targets = _target_columns(header, target, path)
    values = _to_floats(path, header, rows)
    with np.errstate(all="ignore"):
        return _scaled(path, header, targets, values, test_fraction, rng)


def _scaled(
    path: Path,
    header: list[str],
    targets: list[str],
    values: np.ndarray,
    test_fraction: float,
    rng: np.random.Generator,
) -> Dataset:
    _reject_constant(path, header, values)
    target_idx = [header.index(t) for t in targets]
    feature_idx = [i for i in range(len(header)) if i not in target_idx]
    if not feature_idx:
        raise DataError(f"{path}: every column is a target; leave at least one input column")
    dataset = split_and_scale(
        path.stem,
        values[:, feature_idx],
        values[:, target_idx],
        test_fraction,
        rng,
        [header[i] for i in feature_idx],
        targets,
    )
    _reject_unscalable(path, dataset)
    return dataset


def _reject_unscalable(path: Path, dataset: Dataset) -> None:
    """Every scaled value and scale finite: values near the float limits overflow the mean,
    the standard deviation or the range, and would train on zeros or NaN."""
    checks = (
        (dataset.feature_names, dataset.x_scaler, dataset.X_train, dataset.X_test),
        (dataset.target_names, dataset.y_scaler, dataset.y_train, dataset.y_test),
    )
    for names, scaler, *scaled in checks:
        bad = ~np.isfinite(scaler.offset) | ~np.isfinite(scaler.scale)
        for part in scaled:
            bad |= ~np.isfinite(part).all(axis=0)
        if bad.any():
            column = names[int(np.argmax(bad))]
            raise DataError(
                f"{path}: column {column!r} holds values too large to scale (beyond ±1e150 or "
                "so, the float range overflows); rescale that column"
            )


def _read(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    regular_file(path, f"dataset.path={path}", error=DataError)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            lines = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 text ({err.reason}); save it as a UTF-8 CSV"
        ) from None
    except csv.Error as err:
        raise DataError(f"{path} is not a readable CSV file ({err})") from None
    except OSError as err:
        raise DataError(f"dataset.path={path} cannot be read ({err.strerror})") from None
    lines = [(number, row) for number, row in lines if any(cell.strip() for cell in row)]
    if not lines:
        raise DataError(f"{path} is empty; it needs a header row and at least 2 data rows")
    header = [cell.strip() for cell in lines[0][1]]
    duplicates = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicates or "" in header:
        problem = f"repeats {', '.join(duplicates)}" if duplicates else "has an empty column name"
        raise DataError(f"{path}: the header {problem}; give every column a unique name")
    rows = lines[1:]
    if len(rows) < 2:
        raise DataError(
            f"{path} has {len(rows)} data row(s); the train/test split needs at least 2"
        )
    for number, row in rows:
        if len(row) != len(header):
            raise DataError(
                f"{path}, line {number}: {len(row)} fields but the header has {len(header)}; "
                "make every row as long as the header"
            )
    return header, rows


def _as_written(value: object, header: list[str]) -> str:
    """How the user most likely wrote ``value``, a bool or number YAML made of a column name: the
    header's column that reads as it (``TRUE``, ``1.0``), else YAML's own spelling (``true``)."""
    for name in header:
        if name.strip().lower() == str(value).lower():
            return name
        try:
            if not isinstance(value, bool) and float(name) == value:
                return name
        except ValueError:
            pass
    return str(value).lower() if isinstance(value, bool) else str(value)


def _target_columns(header: list[str], target: str | list[str] | None, path: Path) -> list[str]:
    if isinstance(target, bool) or not isinstance(target, str | list | tuple | None):
        written = _as_written(target, header)
        raise DataError(
            f"dataset.target={written} is read as a {type(target).__name__}, not a "
            f"column name; quote it (dataset.target='\"{written}\"') or name a column of "
            f"{path.name}"
        )
    if target is None or len(target) == 0:
        raise DataError(
            f"dataset.target is not set; name the target column(s) of {path.name}, "
            f"e.g. dataset.target={header[-1]}"
        )
    targets = [target] if isinstance(target, str) else [str(t) for t in target]
    missing = [t for t in targets if t not in header]
    if missing:
        raise DataError(
            f"target column {', '.join(map(repr, missing))} is not in {path.name} "
            f"(columns: {', '.join(header)}); set dataset.target to one of them"
        )
    return targets


def _to_floats(path: Path, header: list[str], rows: list[tuple[int, list[str]]]) -> np.ndarray:
    values = np.empty((len(rows), len(header)))
    for i, (number, row) in enumerate(rows):
        for j, cell in enumerate(row):
            try:
                value = float(cell)
            except ValueError:
                shown = repr(cell.strip()) if cell.strip() else "an empty cell"
                raise DataError(
                    f"{path}, line {number}, column {header[j]!r}: {shown} is not a number; "
                    "fix or remove that row"
                ) from None
            if not math.isfinite(value):
                raise DataError(
                    f"{path}, line {number}, column {header[j]!r}: {cell.strip()!r} is not a "
                    "finite number; fill in or remove that row"
                )
            values[i, j] = value
    return values


def _reject_constant(path: Path, header: list[str], values: np.ndarray) -> None:
    constant = [header[j] for j in range(values.shape[1]) if np.ptp(values[:, j]) == 0]
    if constant:
        raise DataError(
            f"{path}: column {', '.join(map(repr, constant))} has the same value in every row "
            "and carries no information; drop it"
        )
