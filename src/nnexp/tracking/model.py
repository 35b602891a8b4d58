"""Log a network as an MLflow pyfunc model from code, loadable with runs:/<id>/model: a single
run logs its own; a sweep logs its best child's on the parent when it ends."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
from mlflow.models import infer_signature

from nnexp.private_api import pinned_requirements
from nnexp.tracking.vocabulary import EXAMPLE, SCALERS

MODEL_CODE = Path(__file__).with_name("model_code.py")


def log_model(folder: Path) -> None:
    """Log ``model`` into the active run from a job's folder: model_code.py (numpy only, nothing
    pickled), weights.npz, the scalers, a signature and input example in original units, and
    the exact mlflow and numpy versions as its requirements."""
    example = json.loads((folder / EXAMPLE).read_text())
    X, y = np.asarray(example["X"]), np.asarray(example["y"])
    requirements = [f"{name}=={metadata.version(name)}" for name in ("mlflow", "numpy")]
    with pinned_requirements():
        mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={"weights": str(folder / "weights.npz"), "scalers": str(folder / SCALERS)},
            signature=infer_signature(X, y),
            input_example=X,
            pip_requirements=requirements,
        )


def has_model_inputs(folder: Path) -> bool:
    """Whether ``folder`` holds what ``log_model`` needs."""
    return all((folder / name).is_file() for name in ("weights.npz", SCALERS, EXAMPLE))
