"""A job's files in its output folder: weights.npz, config.yaml, overrides.yaml, cost_curve.png
and costs.csv. The same files are the run's MLflow artifacts."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nnexp import plots
from nnexp.core import TrainResult
from nnexp.data import Dataset
from nnexp.errors import RunFailed
from nnexp.privacy import redact_tree


def write_outputs(
    cfg: dict[str, Any], dataset: Dataset, result: TrainResult, seeds: list[int], folder: Path
) -> dict[str, Path]:
    """Write the job's files; returns them by role (weights, config, overrides, curve, costs).
    A full disk or an unwritable folder raises RunFailed naming the folder."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            "weights": _weights(result, seeds, folder / "weights.npz"),
            "config": _config(cfg, folder / "config.yaml"),
            "curve": _curve(result, seeds, dataset.name, cfg, folder / "cost_curve.png"),
            "costs": _costs(result, seeds, folder / "costs.csv"),
        }
    except OSError as err:
        raise RunFailed(
            f"cannot write the run's files in {folder}: {err.strerror or err}; "
            "free space or fix the folder's permissions"
        ) from None
    overrides = folder / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        files["overrides"] = overrides
    return files


def _weights(result: TrainResult, seeds: list[int], path: Path) -> Path:
    """W1 (d, h) and W2 (h, k); with several seeds, stacked (S, d, h), (S, h, k) plus ``seeds``."""
    if len(seeds) == 1:
        np.savez(path, W1=result.W1[0], W2=result.W2[0])
    else:
        np.savez(path, W1=result.W1, W2=result.W2, seeds=np.asarray(seeds))
    return path


def _config(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(redact_tree(cfg), sort_keys=False))
    return path


def _curve(
    result: TrainResult, seeds: list[int], name: str, cfg: dict[str, Any], path: Path
) -> Path:
    epochs, train_cost, test_cost = result.history.as_arrays()
    model, optim, l2 = cfg["model"], cfg["optim"], cfg["regularization"]["l2"]
    title = f"{name}: hidden={model['hidden']} lr={optim['lr']} λ={l2}"
    if len(seeds) > 1:
        title += f" (mean of {len(seeds)} seeds)"
    return plots.cost_curve(epochs, train_cost.mean(axis=1), test_cost.mean(axis=1), title, path)


def _costs(result: TrainResult, seeds: list[int], path: Path) -> Path:
    epochs, train_cost, test_cost = result.history.as_arrays()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "seed", "train_cost", "test_cost"])
        for row, epoch in enumerate(epochs):
            for column, seed in enumerate(seeds):
                writer.writerow(
                    [
                        int(epoch),
                        seed,
                        repr(float(train_cost[row, column])),
                        repr(float(test_cost[row, column])),
                    ]
                )
    return path
