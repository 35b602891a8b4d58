"""What a job is: where it runs (its context), its checked config with data and initial weights,
and how its params, seeds, run name and recorded costs are named."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from nnexp import core
from nnexp.config import schema as config
from nnexp.config.hydra_errors import HYDRA_ERRORS, hydra_error_line
from nnexp.data import Dataset, load_dataset
from nnexp.data.registry import REGISTRY
from nnexp.errors import UserError
from nnexp.run import memory
from nnexp.run.weights import load_weights
from nnexp.safety import privacy

#: Keys that say where results go, not what is computed: left out of params and config hashes.
NOT_PARAMS = ("tracking", "sweep")


@dataclass(frozen=True)
class JobContext:
    """Where a job runs: launch folder (relative paths start there), output folder, overrides,
    and for a sweep job its sweep folder and number."""

    launch_dir: Path
    output_dir: Path
    overrides: list[str] = field(default_factory=list)
    sweep_dir: Path | None = None
    job_num: int | None = None

    @classmethod
    def from_hydra(cls) -> JobContext:
        """The context of the Hydra job running now."""
        hc = HydraConfig.get()
        multirun = hc.mode == RunMode.MULTIRUN
        return cls(
            launch_dir=Path(hc.runtime.cwd),
            output_dir=Path(hc.runtime.output_dir),
            overrides=task_overrides(hc),
            sweep_dir=Path(hc.sweep.dir) if multirun else None,
            job_num=hc.job.num if multirun else None,
        )


def task_overrides(hc: DictConfig) -> list[str]:
    """The job's overrides as typed: ``${…}`` in them stays text (a user's string is data)."""
    return OmegaConf.to_container(hc.overrides.task, resolve=False)


@dataclass(frozen=True)
class JobOutcome:
    """The objective (final test_cost, mean over seeds) and the MLflow run that holds the job."""

    objective: float
    run_id: str | None


@dataclass
class Job:
    """A checked config with its data and initial weights, ready to train: ``config`` typed for
    the code that reads it, ``record`` the same values as plain data for what is recorded
    (params, config hash, config.yaml)."""

    config: config.Config
    record: dict[str, Any]
    dataset: Dataset
    W1: np.ndarray
    W2: np.ndarray
    rngs: list[np.random.Generator]
    hp: core.Hyperparams

    @property
    def metric_names(self) -> list[str]:
        """What the run records: the costs, accuracy on a classification dataset, and the
        training dynamics with ``tracking.dynamics``."""
        classification = REGISTRY[self.config.dataset.name].classification
        return core.metric_names(classification, self.config.tracking.dynamics)

    @property
    def seeds(self) -> list[int]:
        """The seed of each copy."""
        return list(range(self.config.seed, self.config.seed + self.config.train.seeds))

    def params(self) -> dict[str, Any]:
        """The resolved config with dotted keys (tracking keys left out), plus the data's sizes."""
        sizes = {f"dataset.{key}": value for key, value in self.dataset.summary().items()}
        return {**flatten(params_view(self.record)), **sizes}

    def config_hash(self, code_version: str) -> str:
        """Same config, data and code, same hash: what resume compares."""
        payload = json.dumps(
            [params_view(self.record), self.dataset.digest(), code_version], sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


def params_view(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config without the keys that only say where results go or could hold a credential."""
    return privacy.without_secrets(
        {key: value for key, value in cfg.items() if key not in NOT_PARAMS}
    )


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"hidden": 3}} → {"model.hidden": 3}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def model_streams(seed: int) -> np.random.Generator:
    """The generator of a copy's initial weights and mini-batch order (stream 1 of ``seed``)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])


def data_stream(seed: int) -> np.random.Generator:
    """The generator of the dataset's noise and split (stream 0 of ``dataset.seed``)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])


def prepare(cfg: DictConfig, ctx: JobContext) -> Job:
    """Check ranges, load the dataset, draw or load the initial weights."""
    try:
        config.check(cfg)
        resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        typed = config.typed(cfg, resolved)
    except HYDRA_ERRORS as err:
        key = getattr(err, "full_key", None)
        what = f"{key}: {str(err).splitlines()[0]}" if key else hydra_error_line(err)
        raise UserError(f"{what}; fix that value or its ${{…}} interpolation") from None
    spec = dict(resolved["dataset"])
    if spec.get("path") is not None:
        spec["path"] = str(ctx.launch_dir / spec["path"])
    fix = "lower dataset.n or dataset.d"
    memory.require(memory.dataset_bytes(spec), f"dataset={spec['name']}", fix)
    dataset = load_dataset(spec, data_stream(spec["seed"]))
    model, optim = typed.model, typed.optim
    dtype = np.dtype(model.dtype.value)
    seeds = range(typed.seed, typed.seed + typed.train.seeds)
    optimizer = core.OPTIMIZERS[optim.name].cls
    needed = memory.training_bytes(
        max(len(dataset.X_train), len(dataset.X_test)), dataset.d, model.hidden, dataset.k,
        len(seeds), optim.batch_size, dtype.itemsize, optimizer.state,
    )  # fmt: skip
    sizes = f"model.hidden={model.hidden} with train.seeds={len(seeds)}"
    memory.require(needed, sizes, "lower model.hidden, train.seeds or optim.batch_size")
    rngs = [model_streams(seed) for seed in seeds]
    if model.init_weights is not None:
        W1, W2 = load_weights(
            ctx.launch_dir / model.init_weights, dataset.d, model.hidden, dataset.k
        )
        W1 = np.repeat(W1[None], len(rngs), axis=0).astype(dtype)
        W2 = np.repeat(W2[None], len(rngs), axis=0).astype(dtype)
    else:
        W1, W2 = core.init_weights(
            dataset.d, model.hidden, dataset.k, model.init.value, rngs, dtype
        )
    hp = core.Hyperparams(
        lr=optim.lr,
        epochs=optim.epochs,
        l2=typed.regularization.l2,
        reduction=typed.cost.reduction.value,
        batch_size=optim.batch_size,
        optimizer=optim.name,
        options={key: getattr(optim, key) for key in optimizer.options},
    )
    return Job(typed, resolved, dataset, W1, W2, rngs, hp)


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """Dotted keys of the config as given, for a job rejected before it could run."""
    try:
        return flatten(params_view(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)))
    except Exception:
        return {}


def run_name(cfg: DictConfig, overrides: list[str], axes: list[str]) -> str:
    """``hidden=4 lr=0.5`` from a sweep's axes, or the dataset and main hyperparameters."""
    if axes:
        chosen = dict(override.split("=", 1) for override in overrides if "=" in override)
        keys = [key.lstrip("+~") for key in axes]
        return " ".join(
            f"{short_name(key, keys)}={chosen.get(key, OmegaConf.select(cfg, key))}" for key in keys
        )
    return (
        f"{cfg.dataset.name} hidden={cfg.model.hidden} lr={cfg.optim.lr} l2={cfg.regularization.l2}"
    )


def short_name(key: str, keys: list[str]) -> str:
    """The last part of a dotted key, unless another swept key ends the same way."""
    last = key.rsplit(".", 1)[-1]
    return last if sum(k.rsplit(".", 1)[-1] == last for k in keys) == 1 else key
