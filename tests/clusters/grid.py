"""The grid the cluster tests sweep, and how they compare its children: 8 configs in 2 shapes,
each child's curves and weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import mlflow_client, sweep_runs

#: 8 configs in 2 shapes (model.hidden 2 and 3): 2 groups of 4 copies, each copy with its own
#: learning rate and seed. The cluster tests run it as one task per config too, so each config
#: more is a task more that starts Python and imports MLflow.
GRID = ["model.hidden=2,3", "optim.lr=0.5,2", "seed=0,1", "optim.epochs=60"]
CONFIGS, PER_SHAPE = 8, 4


def by_config(uri: str) -> dict[tuple[str, str, str], object]:
    """The sweep's children by (model.hidden, optim.lr, seed)."""
    _, children = sweep_runs(uri)
    keys = ("model.hidden", "optim.lr", "seed")
    return {tuple(c.data.params[k] for k in keys): c for c in children}


def curves(uri: str, run) -> dict[str, list[tuple[int, float]]]:
    """Every metric of the run: its (step, value) points in step order."""
    client = mlflow_client(uri)
    return {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        for key in run.data.metrics
    }


def weights(run) -> dict[str, np.ndarray]:
    """The run's weights.npz, from its output folder."""
    with np.load(Path(run.data.tags["nnexp.output_dir"]) / "weights.npz") as saved:
        return {key: saved[key] for key in saved.files}
