"""A job's files in its output folder: weights.npz, config.yaml, overrides.yaml, cost_curve.png
and costs.csv, which are the run's MLflow artifacts, and (with tracking.log_model) the scalers
and input example its pyfunc model is logged from."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nnexp.core import TrainResult
from nnexp.data import Dataset
from nnexp.errors import RunFailed
from nnexp.run.job import Job
from nnexp.safety.privacy import redact_tree
from nnexp.tracking.vocabulary import EXAMPLE, SCALERS


def write_outputs(
    job: Job, result: TrainResult, folder: Path, figure: bool = True
) -> dict[str, Path]:
    """Write the job's files; returns them by role (weights, config, overrides, curve, costs);
    ``figure=False`` leaves out the curve (a batched sweep draws one figure for all its jobs).
    A full disk or an unwritable folder raises RunFailed naming the folder."""
    seeds, tracking = job.seeds, job.config.tracking
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            "weights": _weights(result, seeds, folder / "weights.npz"),
            "config": _config(job.record, folder / "config.yaml"),
            "costs": _costs(result, seeds, folder / "costs.csv"),
        }
        if figure:
            files["curve"] = _curve(result, job, folder / "cost_curve.png")
        if tracking.enabled and tracking.log_model:
            write_model_inputs(job.dataset, folder)
    except OSError as err:
        raise RunFailed(
            f"cannot write the run's files in {folder}: {err.strerror or err}; "
            "free space or fix the folder's permissions"
        ) from None
    overrides = folder / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        files["overrides"] = overrides
    return files


#: Rows of the training split (in original units) kept as the model's input example.
EXAMPLE_ROWS = 5


def write_model_inputs(dataset: Dataset, folder: Path) -> None:
    """The scalers and EXAMPLE_ROWS training rows with their targets, in original units: with
    weights.npz, all a model is logged from (for a sweep, later, by its launching process)."""
    scalers = {"x": dataset.x_scaler.to_dict(), "y": dataset.y_scaler.to_dict()}
    (folder / SCALERS).write_text(json.dumps(scalers, indent=1))
    example = {
        "X": dataset.x_scaler.inverse(dataset.X_train[:EXAMPLE_ROWS]).tolist(),
        "y": dataset.y_scaler.inverse(dataset.y_train[:EXAMPLE_ROWS]).tolist(),
    }
    (folder / EXAMPLE).write_text(json.dumps(example))


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


def _curve(result: TrainResult, job: Job, path: Path) -> Path:
    from nnexp import plots  # matplotlib takes ~1 s to import: only a run that draws pays it

    epochs, train_cost, test_cost = result.history.as_arrays()
    config = job.config
    title = (
        f"{job.dataset.name}: hidden={config.model.hidden} lr={config.optim.lr} "
        f"λ={config.regularization.l2}"
    )
    if len(job.seeds) > 1:
        title += f" (mean of {len(job.seeds)} seeds)"
    return plots.cost_curve(epochs, train_cost.mean(axis=1), test_cost.mean(axis=1), title, path)


def _costs(result: TrainResult, seeds: list[int], path: Path) -> Path:
    """costs.csv: one row per recorded epoch and seed, one column per metric the run records."""
    names = list(result.history.values)
    columns = [result.history.metric(name) for name in names]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "seed", *names])
        for row, epoch in enumerate(result.history.epochs):
            for column, seed in enumerate(seeds):
                values = [repr(float(metric[row, column])) for metric in columns]
                writer.writerow([int(epoch), seed, *values])
    return path
