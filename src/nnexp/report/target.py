"""What ``nnexp report TARGET`` names: an experiments/ file (its MLflow experiment's latest sweep),
a sweep parent's run id (that sweep), or an MLflow experiment name (all its non-parent runs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from mlflow.exceptions import MlflowException

from nnexp.errors import UserError
from nnexp.tracking.queries import children, latest, search_all
from nnexp.tracking.vocabulary import PARENT_RUN_TAG, RUN_TYPE_TAG, latest_attempts

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

RUN_ID = re.compile(r"[0-9a-f]{32}")
#: Params derived from the data, not chosen: never shown as swept keys.
DERIVED = ("dataset.n_train", "dataset.n_test", "dataset.d", "dataset.k", "dataset.digest")


@dataclass
class Selection:
    """The runs of one report: their experiment, the sweep parent (if any), the swept keys
    (sorted) and, for a named experiment, its config file's text."""

    target: str
    experiment_name: str
    experiment_id: str
    parent: Run | None
    runs: list[Run]
    axes: list[str]
    config_text: str | None = None


def resolve(client: MlflowClient, target: str, experiments_dir: Path) -> Selection:
    """The Selection that ``target`` names; a UserError saying what exists otherwise."""
    config_file = experiments_dir / f"{target}.yaml"
    if "/" not in target and config_file.is_file():
        return _named_experiment(client, target, config_file)
    if RUN_ID.fullmatch(target):
        return _sweep(client, target, get_run(client, target))
    experiment = client.get_experiment_by_name(target)
    if experiment is not None:
        runs = [r for r in search_all(client, [experiment.experiment_id]) if not is_sweep(r)]
        return Selection(
            target, experiment.name, experiment.experiment_id, None, runs, _varying(runs)
        )
    names = sorted(p.stem for p in experiments_dir.glob("*.yaml"))
    known = sorted(e.name for e in client.search_experiments())
    raise UserError(
        f"no experiment file, sweep run id or MLflow experiment named {target!r} "
        f"(experiments/: {', '.join(names) or 'none'}; MLflow experiments: "
        f"{', '.join(known) or 'none'})"
    )


def _named_experiment(client: MlflowClient, name: str, config_file: Path) -> Selection:
    text = config_file.read_text()
    tracked = ((yaml.safe_load(text) or {}).get("tracking") or {}).get("experiment", name)
    experiment = client.get_experiment_by_name(tracked)
    run_it = f"run it first: nnexp-train -m +experiment={name}"
    if experiment is None:
        raise UserError(f"the store has no MLflow experiment {tracked!r} yet; {run_it}")
    last_sweep = latest(client, experiment.experiment_id, f"tags.`{RUN_TYPE_TAG}` = 'sweep'")
    if last_sweep is None:
        raise UserError(f"MLflow experiment {tracked!r} holds no sweep; {run_it}")
    selection = _sweep(client, name, last_sweep)
    selection.config_text = text
    return selection


def get_run(client: MlflowClient, run_id: str) -> Run:
    """The run ``run_id``; a UserError naming the store when there is none."""
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise UserError(f"no run with id {run_id} in the store {client.tracking_uri}") from None


def _sweep(client: MlflowClient, target: str, parent: Run) -> Selection:
    run_id = parent.info.run_id
    if not is_sweep(parent):
        sweep = parent.data.tags.get(PARENT_RUN_TAG)
        hint = f"report its sweep {sweep}" if sweep else "report its MLflow experiment by name"
        raise UserError(f"run {run_id} is not a sweep's parent run; {hint}")
    experiment = client.get_experiment(parent.info.experiment_id)
    runs = list(latest_attempts(children(client, parent.info.experiment_id, run_id)).values())
    return Selection(
        target, experiment.name, experiment.experiment_id, parent, runs, sorted(parent.data.params)
    )


def is_sweep(run: Run) -> bool:
    """Whether ``run`` is a sweep's parent run."""
    return run.data.tags.get(RUN_TYPE_TAG) == "sweep"


def _varying(runs: list[Run]) -> list[str]:
    """Params whose values differ between the runs (derived data sizes left out), sorted."""
    keys = sorted({key for run in runs for key in run.data.params if key not in DERIVED})
    return [k for k in keys if len({run.data.params.get(k) for run in runs}) > 1]
