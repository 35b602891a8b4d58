"""Log a run's network as an MLflow pyfunc model from code, loadable with runs:/<id>/model."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import mlflow
from mlflow.models import infer_signature

from nnexp.data import Dataset

MODEL_CODE = Path(__file__).with_name("model_code.py")
#: Rows of the training split (in original units) logged as the model's input example.
EXAMPLE_ROWS = 5


def log_model(weights: Path, dataset: Dataset, work_dir: Path) -> None:
    """Log ``model`` into the active run: model_code.py (numpy only, nothing pickled), the
    weights, the scalers as JSON (written to ``work_dir``), a signature and an input example in
    original units, and the exact mlflow and numpy versions as its requirements."""
    scalers = work_dir / "scalers.json"
    scalers.write_text(
        json.dumps({"x": dataset.x_scaler.to_dict(), "y": dataset.y_scaler.to_dict()}, indent=1)
    )
    example = dataset.x_scaler.inverse(dataset.X_train[:EXAMPLE_ROWS])
    signature = infer_signature(example, dataset.y_scaler.inverse(dataset.y_train[:EXAMPLE_ROWS]))
    requirements = [f"{name}=={metadata.version(name)}" for name in ("mlflow", "numpy")]
    mlflow.pyfunc.log_model(
        name="model",
        python_model=str(MODEL_CODE),
        artifacts={"weights": str(weights), "scalers": str(scalers)},
        signature=signature,
        input_example=example,
        pip_requirements=requirements,
    )
