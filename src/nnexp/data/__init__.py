"""Datasets: load, split with the run's generator, scale on training statistics.

Returns plain arrays and scalers; knows nothing of Hydra or MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nnexp.data.builtin import sine, sklearn_bundled, sleep_study, synthetic, xor
from nnexp.data.csv_file import DataError, load_csv
from nnexp.data.dataset import Dataset
from nnexp.data.scaling import Scaler

DATASETS = ("sleep_study", "xor", "sine", "synthetic", "diabetes", "breast_cancer", "digits", "csv")


def load_dataset(spec: Mapping[str, Any], rng: np.random.Generator) -> Dataset:
    """The dataset named by ``spec["name"]``, its other keys as that dataset's options."""
    name = spec["name"]
    if name == "sleep_study":
        return sleep_study()
    if name == "xor":
        return xor()
    if name == "sine":
        return sine(spec["n"], spec["noise"], spec["test_fraction"], rng)
    if name == "synthetic":
        return synthetic(spec["n"], spec["d"], spec["k"], spec["noise"], spec["test_fraction"], rng)
    if name in ("diabetes", "breast_cancer", "digits"):
        return sklearn_bundled(name, spec["test_fraction"], rng)
    if name == "csv":
        path = Path(spec["path"]) if spec["path"] is not None else None
        return load_csv(path, spec["target"], spec["test_fraction"], rng)
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


__all__ = ["DATASETS", "DataError", "Dataset", "Scaler", "load_dataset"]
