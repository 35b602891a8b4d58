"""The pyfunc model of one nnexp run, logged from code (nothing pickled).

Artifacts: ``weights`` (an .npz with W1, W2) and ``scalers`` (JSON with the input and target
scalers). predict(X in original units) = inverse_y(σ(σ(scale_x(X) W1) W2)), in target units.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel

from nnexp.core import forward
from nnexp.data.scaling import Scaler


class NetworkModel(PythonModel):
    """Scales inputs as in training, runs the network, returns predictions in target units."""

    def load_context(self, context) -> None:
        """Read the weights (no pickle) and the scalers."""
        with np.load(context.artifacts["weights"], allow_pickle=False) as weights:
            self.W1, self.W2 = weights["W1"], weights["W2"]
        scalers = json.loads(Path(context.artifacts["scalers"]).read_text())
        self.x_scaler = Scaler.from_dict(scalers["x"])
        self.y_scaler = Scaler.from_dict(scalers["y"])

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        """Predictions (N, k) for inputs (N, d) in the dataset's original units."""
        X = self.x_scaler.transform(np.asarray(model_input, dtype=np.float64))
        return self.y_scaler.inverse(forward(X, self.W1, self.W2))


mlflow.models.set_model(NetworkModel())
