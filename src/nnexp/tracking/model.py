"""Log a run's network as an MLflow pyfunc model from code, loadable with runs:/<id>/model."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
from mlflow.models import infer_signature

from nnexp.data import Dataset

MODEL_CODE = Path(__file__).with_name("model_code.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def log_model(weights: Path, dataset: Dataset, work_dir: Path) -> None:
    """Log ``model`` into the active run: the code above, the weights, the scalers, a signature
    and an input example in original units. nnexp's source ships with it (code_paths)."""
    scalers = work_dir / "scalers.json"
    scalers.write_text(
        json.dumps({"x": dataset.x_scaler.to_dict(), "y": dataset.y_scaler.to_dict()}, indent=1)
    )
    example = dataset.x_scaler.inverse(dataset.X_train[:5])
    signature = infer_signature(example, dataset.y_scaler.inverse(dataset.y_train[:5]))
    requirements = [f"{name}=={metadata.version(name)}" for name in ("mlflow", "numpy")]
    mlflow.pyfunc.log_model(
        name="model",
        python_model=str(MODEL_CODE),
        artifacts={"weights": str(weights), "scalers": str(scalers)},
        code_paths=[str(PACKAGE_DIR)],
        signature=signature,
        input_example=np.asarray(example),
        pip_requirements=requirements,
    )
