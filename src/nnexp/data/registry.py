"""Every dataset nnexp knows, one entry each: how to load it and the options its config carries.

The config's schemas (``nnexp.config.schema``), ``nnexp.data.DATASETS`` and ``load_dataset`` are all
derived from ``REGISTRY``: adding a dataset is its loader, one entry here and its
``conf/dataset/NAME.yaml``. Options are plain dataclasses (no Hydra here); every option is
required, and the yaml gives its default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from nnexp.data.builtin import sine, sklearn_bundled, sleep_study, synthetic, xor
from nnexp.data.csv_file import DataError, load_csv
from nnexp.data.dataset import Dataset


@dataclass(kw_only=True)
class SplitOptions:
    """A dataset split at random into train and test: the held-out share."""

    test_fraction: float


@dataclass(kw_only=True)
class SineOptions(SplitOptions):
    """y = sin(x) + noise · N(0, 1): n points."""

    n: int
    noise: float


@dataclass(kw_only=True)
class SyntheticOptions(SplitOptions):
    """n rows of d Gaussian inputs, k outputs of a random teacher plus noise."""

    n: int
    d: int
    k: int
    noise: float


@dataclass(kw_only=True)
class CsvOptions(SplitOptions):
    """A CSV file with a header row; ``target`` is one column name or a list of them."""

    path: str | None
    target: Any


@dataclass(frozen=True)
class DatasetEntry:
    """``load(rng, **options)`` gives the Dataset; ``options`` is the dataclass of the keys its
    config carries besides ``name`` and ``seed`` (None: none); ``classification``: its targets
    are classes (one-hot for k > 1, 0/1 for k = 1), so runs record accuracy."""

    load: Callable[..., Dataset]
    options: type | None = None
    classification: bool = False


def _csv(rng: np.random.Generator, path: str | None, target: Any, test_fraction: float) -> Dataset:
    return load_csv(Path(path) if path is not None else None, target, test_fraction, rng)


REGISTRY: dict[str, DatasetEntry] = {
    "sleep_study": DatasetEntry(lambda rng: sleep_study()),
    "xor": DatasetEntry(lambda rng: xor(), classification=True),
    "sine": DatasetEntry(sine, SineOptions),
    "synthetic": DatasetEntry(synthetic, SyntheticOptions),
    "diabetes": DatasetEntry(partial(sklearn_bundled, "diabetes"), SplitOptions),
    "breast_cancer": DatasetEntry(
        partial(sklearn_bundled, "breast_cancer"), SplitOptions, classification=True
    ),
    "digits": DatasetEntry(partial(sklearn_bundled, "digits"), SplitOptions, classification=True),
    "csv": DatasetEntry(_csv, CsvOptions),
}
DATASETS = tuple(REGISTRY)


def load_dataset(spec: Mapping[str, Any], rng: np.random.Generator) -> Dataset:
    """The dataset named by ``spec["name"]``, its entry's options taken from ``spec``."""
    entry = REGISTRY.get(spec["name"])
    if entry is None:
        raise DataError(f"unknown dataset {spec['name']!r}; choose one of {', '.join(DATASETS)}")
    options = {f.name: spec[f.name] for f in fields(entry.options)} if entry.options else {}
    return entry.load(rng=rng, **options)
