"""The floor the harness's tracking is measured against: a minimal hand-written MLflow client
script that trains like ``nnexp-train`` and logs the same things, with nothing else around it.

``python -m benchmarks.floor URI JOBS EPOCHS``: trains sleep_study with hidden 1 … JOBS (lr 2,
N(0, 1) initial weights, costs every epoch), and for each job creates a run (a child of one parent
run when JOBS > 1), logs 18 params and the train and test cost points in one ``log_batch``,
writes and uploads the same five files as the harness (weights.npz, config.yaml, overrides.yaml,
cost_curve.png, costs.csv) and ends the run.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from nnexp import core
from nnexp.data import load_dataset

LR = 2.0


def config(hidden: int, epochs: int) -> dict[str, object]:
    """The 18 params the harness logs for the same job."""
    return {
        "seed": 0,
        "dataset.name": "sleep_study",
        "dataset.seed": 0,
        "model.hidden": hidden,
        "model.init": "normal",
        "model.init_weights": None,
        "model.dtype": "float64",
        "optim.lr": LR,
        "optim.epochs": epochs,
        "optim.batch_size": None,
        "regularization.l2": 0.0,
        "cost.reduction": "mean",
        "train.seeds": 1,
        "dataset.n_train": 4,
        "dataset.n_test": 4,
        "dataset.d": 2,
        "dataset.k": 1,
        "dataset.digest": "sleep_study",
    }


def write_files(folder: Path, params: dict[str, object], result: core.TrainResult) -> None:
    """weights.npz, config.yaml, overrides.yaml, cost_curve.png and costs.csv."""
    np.savez(folder / "weights.npz", W1=result.W1[0], W2=result.W2[0])
    (folder / "config.yaml").write_text(yaml.safe_dump(params))
    overrides = [f"model.hidden={params['model.hidden']}"]
    (folder / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    epochs, train_cost, test_cost = result.history.as_arrays()
    figure, axes = plt.subplots()
    axes.semilogy(epochs, train_cost[:, 0], label="train")
    axes.semilogy(epochs, test_cost[:, 0], label="test")
    axes.legend()
    figure.savefig(folder / "cost_curve.png")
    plt.close(figure)
    with (folder / "costs.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "train_cost", "test_cost"])
        writer.writerows(zip(epochs, train_cost[:, 0], test_cost[:, 0], strict=True))


def log_record(
    client: MlflowClient, run_id: str, params: dict[str, object], result: core.TrainResult
) -> None:
    """One log_batch: the params, both cost curves of copy 0 and the status tag."""
    steps, train_cost, test_cost = result.history.as_arrays()
    metrics = [
        Metric(key, float(value), 0, int(step))
        for key, values in (("train_cost", train_cost), ("test_cost", test_cost))
        for step, value in zip(steps, values[:, 0], strict=True)
    ]
    client.log_batch(
        run_id,
        metrics=metrics,
        params=[Param(key, str(value)) for key, value in params.items()],
        tags=[RunTag("nnexp.status", "finished")],
    )


def main(uri: str, jobs: int, epochs: int) -> None:
    """Train and log ``jobs`` runs into the experiment ``floor`` of the store at ``uri``."""
    data = load_dataset({"name": "sleep_study"}, np.random.default_rng(0))
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("floor")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("floor")
    parent = client.create_run(experiment_id, run_name="sweep") if jobs > 1 else None
    for hidden in range(1, jobs + 1):
        rngs = [np.random.default_rng(0)]
        W1, W2 = core.init_weights(data.d, hidden, data.k, "normal", rngs, np.float64)
        hp = core.Hyperparams(lr=LR, epochs=epochs, l2=0.0)
        result = core.train(
            W1, W2, (data.X_train, data.y_train), (data.X_test, data.y_test), hp, rngs
        )
        tags = {"mlflow.parentRunId": parent.info.run_id} if parent else {}
        run = client.create_run(experiment_id, run_name=f"hidden={hidden}", tags=tags)
        params = config(hidden, epochs)
        log_record(client, run.info.run_id, params, result)
        with tempfile.TemporaryDirectory() as folder:
            write_files(Path(folder), params, result)
            client.log_artifacts(run.info.run_id, folder)
        client.set_terminated(run.info.run_id)
    if parent is not None:
        client.set_terminated(parent.info.run_id)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
