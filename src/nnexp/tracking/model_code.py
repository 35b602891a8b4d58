"""The pyfunc model of one nnexp run, logged from code (nothing pickled); numpy only, so serving
it needs neither nnexp nor a rebuilt environment.

Artifacts: ``weights`` (an .npz with W1 (d, h) and W2 (h, k), or stacked (S, d, h), (S, h, k) for
a run of S seeds) and ``scalers`` (JSON: offset and scale of the inputs and of the targets).
predict(X in original units) = unscale_y(mean over seeds of σ(σ(scale_x(X) W1) W2)).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^(−z)), silent where e^(−z) overflows (σ is then exactly 0)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


class NetworkModel(PythonModel):
    """Scales inputs as in training, runs the network (each seed's copy, then their mean) and
    returns predictions (N, k) in the targets' original units."""

    def load_context(self, context) -> None:
        """Read the weights (no pickle; a leading seed axis is kept) and the scalers."""
        with np.load(context.artifacts["weights"], allow_pickle=False) as weights:
            self.W1 = np.asarray(weights["W1"], np.float64)
            self.W2 = np.asarray(weights["W2"], np.float64)
        scalers = json.loads(Path(context.artifacts["scalers"]).read_text())
        self.x_offset, self.x_scale = (np.asarray(scalers["x"][k]) for k in ("offset", "scale"))
        self.y_offset, self.y_scale = (np.asarray(scalers["y"][k]) for k in ("offset", "scale"))

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        """Predictions (N, k) for inputs (N, d), both in the dataset's original units."""
        X = (np.asarray(model_input, dtype=np.float64) - self.x_offset) / self.x_scale
        yhat = sigmoid(sigmoid(X @ self.W1) @ self.W2)
        if yhat.ndim == 3:
            yhat = yhat.mean(axis=0)
        return yhat * self.y_scale + self.y_offset


mlflow.models.set_model(NetworkModel())
