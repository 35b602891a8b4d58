"""The hand-written MLflow client loops a batched sweep is measured against, logging the same
records as a child of ``nnexp-train -m`` (default launcher): 18 params, the train and test cost at
every epoch in one ``log_batch`` with the status tag, and the same four files (weights.npz,
config.yaml, overrides.yaml, costs.csv), each run a child of one parent run.

``python -m benchmarks.grid_loop MODE URI JOBS EPOCHS``:
- ``grid``: the first JOBS configs of optim.lr 1…8 × regularization.l2 {0, 0.001} × seed 0…7 on
  sleep_study, hidden 3, each trained alone (one core.train call per config);
- ``widths``: hidden 1…JOBS, lr 2, each trained alone;
- ``minimum``: MLflow's own minimum for those records: no training, the same calls (create_run,
  one log_batch, the four files, set_terminated) with the same sizes.
"""

from __future__ import annotations

import csv
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from mlflow import MlflowClient

from benchmarks.floor import config, log_record
from nnexp import core
from nnexp.data import load_dataset
from nnexp.run.job import model_streams

LRS, L2S, SEEDS = [float(lr) for lr in range(1, 9)], [0.0, 0.001], list(range(8))


def configs(mode: str, jobs: int) -> list[dict[str, object]]:
    """The params of the first ``jobs`` configs of the mode."""
    if mode == "widths":
        return [{**config(hidden, 0), "optim.lr": 2.0} for hidden in range(1, jobs + 1)]
    grid = itertools.product(LRS, L2S, SEEDS)
    return [
        {**config(3, 0), "optim.lr": lr, "regularization.l2": l2, "seed": seed}
        for lr, l2, seed in itertools.islice(grid, jobs)
    ]


def trained(params: dict[str, object], data, epochs: int) -> core.TrainResult:
    """The config trained alone, as nnexp-train trains it."""
    rngs = [model_streams(int(params["seed"]))]
    W1, W2 = core.init_weights(data.d, int(params["model.hidden"]), data.k, "normal", rngs)
    hp = core.Hyperparams(
        lr=float(params["optim.lr"]), epochs=epochs, l2=float(params["regularization.l2"])
    )
    return core.train(W1, W2, (data.X_train, data.y_train), (data.X_test, data.y_test), hp, rngs)


def write_files(folder: Path, params: dict[str, object], result: core.TrainResult) -> None:
    """weights.npz, config.yaml, overrides.yaml and costs.csv."""
    np.savez(folder / "weights.npz", W1=result.W1[0], W2=result.W2[0])
    (folder / "config.yaml").write_text(yaml.safe_dump(params))
    overrides = [f"optim.lr={params['optim.lr']}", f"seed={params['seed']}"]
    (folder / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    epochs, train_cost, test_cost = result.history.as_arrays()
    with (folder / "costs.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "seed", "train_cost", "test_cost"])
        for row, epoch in enumerate(epochs):
            writer.writerow([epoch, params["seed"], train_cost[row, 0], test_cost[row, 0]])


def fake_result(hidden: int, epochs: int) -> core.TrainResult:
    """A result of the right sizes, for the minimum (no training)."""
    ones = [np.ones(1)] * (epochs + 1)
    history = core.History(list(range(epochs + 1)), {"train_cost": ones, "test_cost": ones})
    return core.TrainResult(np.ones((1, 2, hidden)), np.ones((1, hidden, 1)), history, [None])


def main(mode: str, uri: str, jobs: int, epochs: int) -> None:
    """Log ``jobs`` runs of the mode into the experiment ``loop`` of the store at ``uri``."""
    data = load_dataset({"name": "sleep_study"}, np.random.default_rng(0))
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("loop")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("loop")
    parent = client.create_run(experiment_id, run_name="sweep")
    ready = tempfile.mkdtemp()
    write_files(Path(ready), configs(mode, 1)[0], fake_result(3, epochs))
    for grid_point in configs(mode, jobs):
        params = {**grid_point, "optim.epochs": epochs}
        hidden = int(params["model.hidden"])
        result = fake_result(hidden, epochs) if mode == "minimum" else trained(params, data, epochs)
        run = client.create_run(
            experiment_id,
            run_name=f"lr={params['optim.lr']} seed={params['seed']} hidden={hidden}",
            tags={"mlflow.parentRunId": parent.info.run_id},
        )
        log_record(client, run.info.run_id, params, result)
        if mode == "minimum":  # the same four files, written once
            client.log_artifacts(run.info.run_id, ready)
        else:
            with tempfile.TemporaryDirectory() as folder:
                write_files(Path(folder), params, result)
                client.log_artifacts(run.info.run_id, folder)
        client.set_terminated(run.info.run_id)
    client.set_terminated(parent.info.run_id)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
