"""The typed schema of nnexp's Hydra config, and the range checks a type cannot express.

Values live in ``conf/`` (YAML); the dataclasses here give every key its type, so Hydra rejects a
wrong type, an unknown key or an unknown option before anything runs. ``check`` then rejects
values out of range with one line that names the key and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass, make_dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigLoadError
from omegaconf import II, MISSING, DictConfig, OmegaConf

from nnexp.core.optimizers import OPTIMIZERS
from nnexp.data.registry import REGISTRY
from nnexp.errors import UserError

#: The most copies ``train.seeds`` trains in one batched computation.
MAX_SEEDS = 1000
#: The longest tracking.experiment: a folder name holds 255 bytes, SQL stores 256 characters.
MAX_EXPERIMENT_NAME = 250
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: conf/ inside an installed wheel, else the checkout's conf/ beside src/.
CONF_DIR = next(d for d in (PACKAGE_DIR / "conf", PACKAGE_DIR.parents[1] / "conf") if d.is_dir())


class InitScheme(Enum):
    """``normal``: N(0, 1) like the lecture; ``xavier``: Glorot uniform."""

    normal = "normal"
    xavier = "xavier"


class DType(Enum):
    """Floating-point type of the weights and the data during training."""

    float64 = "float64"
    float32 = "float32"


class Reduction(Enum):
    """r = 1/N (``mean``) or r = 1 (``sum``, the slide's literal form)."""

    mean = "mean"
    sum = "sum"


@dataclass
class DatasetSchema:
    """Every dataset: its name and the seed of its own draws (noise, split); each dataset adds
    the options of its entry in ``nnexp.data.registry``."""

    name: str = MISSING
    seed: int = II("seed")


@dataclass
class ModelSchema:
    """Hidden width, initialisation, optional initial weights (.npz with W1, W2), dtype, and
    whether to compute on the baseline any x86-64 CPU reproduces (``nnexp.run.deterministic``)."""

    hidden: int = MISSING
    init: InitScheme = MISSING
    init_weights: str | None = MISSING
    dtype: DType = MISSING
    deterministic: bool = False


@dataclass
class OptimSchema:
    """Every optimizer: its name, learning rate, epochs, mini-batch size (null = full batch);
    each optimizer adds the options of its class in ``nnexp.core.optimizers``."""

    name: str = MISSING
    lr: float = MISSING
    epochs: int = MISSING
    batch_size: int | None = MISSING


@dataclass
class RegularizationSchema:
    """λ of the L2 term λ/2 (‖W1‖² + ‖W2‖²)."""

    l2: float = MISSING


@dataclass
class CostSchema:
    """How the squared errors are reduced."""

    reduction: Reduction = MISSING


@dataclass
class TrackingSchema:
    """Where and how MLflow records runs; ``uri`` null = $MLFLOW_TRACKING_URI or ./mlflow.db."""

    enabled: bool = MISSING
    uri: str | None = MISSING
    experiment: str = MISSING
    log_every: int = MISSING
    log_model: bool = MISSING
    dynamics: bool = MISSING
    live_after: float = 2.0


@dataclass
class TrainSchema:
    """``seeds`` = K trains K copies with seeds seed … seed+K−1 in one batched computation."""

    seeds: int = MISSING


@dataclass
class SweepSchema:
    """``resume`` skips jobs already FINISHED; failed jobs report ``failed_objective``."""

    resume: bool = MISSING
    failed_objective: float = MISSING


@dataclass
class Config:
    """The whole config of one training run."""

    seed: int = MISSING
    dataset: Any = MISSING
    model: ModelSchema = field(default_factory=ModelSchema)
    optim: Any = MISSING
    regularization: RegularizationSchema = field(default_factory=RegularizationSchema)
    cost: CostSchema = field(default_factory=CostSchema)
    tracking: TrackingSchema = field(default_factory=TrackingSchema)
    train: TrainSchema = field(default_factory=TrainSchema)
    sweep: SweepSchema = field(default_factory=SweepSchema)


@cache
def _dataset_schema(options: type | None) -> type:
    """A dataset's schema: ``name`` and ``seed``, then the options of its registry entry (one
    class for the datasets that share options)."""
    if options is None:
        return DatasetSchema
    name = f"{options.__name__.removesuffix('Options')}DatasetSchema"
    return make_dataclass(name, [], bases=(options, DatasetSchema))


#: The schema of each dataset, stored as ``schema/dataset/NAME`` (its conf/dataset/NAME.yaml's
#: defaults), derived from the data registry.
DATASET_SCHEMAS = {name: _dataset_schema(entry.options) for name, entry in REGISTRY.items()}


def _optim_schema(name: str) -> type:
    """An optimizer's schema: ``OptimSchema`` and a float key per option of its class."""
    options = OPTIMIZERS[name].cls.options
    if not options:
        return OptimSchema
    keys = [(key, float, field(default=MISSING)) for key in options]
    return make_dataclass(f"{name.capitalize()}OptimSchema", keys, bases=(OptimSchema,))


#: The schema of each optimizer, stored as ``schema/optim/NAME``, derived from the registry.
OPTIM_SCHEMAS = {name: _optim_schema(name) for name in OPTIMIZERS}


def typed(cfg: DictConfig, resolved: dict[str, Any]) -> Config:
    """A checked config as its dataclasses (``resolved`` is ``cfg`` as plain data). ``Config``
    declares ``dataset`` and ``optim`` as Any, since each dataset and optimizer has its own
    schema: they are typed here by the schema of their name."""
    config = OmegaConf.to_object(cfg)
    if isinstance(config, dict):
        config = Config(**config)
    dataset, optim = resolved["dataset"], resolved["optim"]
    config.dataset = DATASET_SCHEMAS[dataset["name"]](**dataset)
    config.optim = OPTIM_SCHEMAS[optim["name"]](**optim)
    return config


def register_schemas() -> None:
    """Put the schemas in Hydra's ConfigStore (``nnexp_schema``, ``schema/dataset/*``,
    ``schema/optim/*``) and nnexp's defaults into three plugin configs:

    - ``hydra/sweeper/optuna`` and its TPE sampler get conf/search_space/optuna.yaml, so
      ``hydra/sweeper=optuna`` searches nnexp's space with a seeded sampler;
    - ``hydra/launcher/ray`` gets ``object_store_memory: null``: the plugin otherwise sets a size,
      which Ray refuses when the launcher connects to an existing cluster by address.
    """
    store = ConfigStore.instance()
    store.store(name="nnexp_schema", node=Config)
    for name, schema in DATASET_SCHEMAS.items():
        store.store(group="schema/dataset", name=name, node=schema)
    for name, schema in OPTIM_SCHEMAS.items():
        store.store(group="schema/optim", name=name, node=schema)
    Plugins.instance()  # plugins register their configs when scanned: scan first, extend after
    space = OmegaConf.load(CONF_DIR / "search_space" / "optuna.yaml")
    _extend_plugin_config(store, "hydra/sweeper/sampler", "tpe", space.pop("sampler"))
    _extend_plugin_config(store, "hydra/sweeper", "optuna", space)
    _extend_plugin_config(
        store, "hydra/launcher", "ray", {"ray": {"init": {"object_store_memory": None}}}
    )


def _extend_plugin_config(store: ConfigStore, group: str, name: str, extra: Any) -> None:
    """Replace a plugin's config ``group/name`` by itself merged with ``extra`` (if installed)."""
    try:
        plugin = store.load(f"{group}/{name}.yaml")
    except ConfigLoadError:
        return
    store.store(group=group, name=name, node=OmegaConf.merge(plugin.node, extra), provider="nnexp")


def check(cfg: DictConfig) -> None:
    """Raise UserError for a key nnexp does not know (added with +) or the first value out of
    range, naming the key and the fix."""
    _known_keys(cfg, Config, "")
    dataset_schema = DATASET_SCHEMAS.get(cfg.dataset.name, DatasetSchema)
    _known_keys(cfg.dataset, dataset_schema, "dataset.")
    _at_least(cfg, "seed", 0)
    _at_least(cfg, "model.hidden", 1)
    _check_optim(cfg.optim)
    _positive_finite(cfg, "optim.lr")
    _at_least(cfg, "optim.epochs", 0)
    if cfg.optim.batch_size is not None:
        _at_least(cfg, "optim.batch_size", 1, "or null for full batch")
    _at_least(cfg, "regularization.l2", 0.0)
    if not math.isfinite(cfg.regularization.l2):
        raise UserError(f"regularization.l2={cfg.regularization.l2} must be finite, e.g. 1e-4")
    _at_least(cfg, "tracking.log_every", 1)
    _at_least(cfg, "tracking.live_after", 0.0, "(seconds; 0: child runs open at once)")
    _at_least(cfg, "train.seeds", 1)
    if cfg.train.seeds > MAX_SEEDS:
        raise UserError(
            f"train.seeds={cfg.train.seeds} is more than {MAX_SEEDS} copies in one batch; "
            f"sweep over seed instead (-m seed=range(0,{cfg.train.seeds}))"
        )
    if not str(cfg.tracking.experiment).strip():
        raise UserError(
            "tracking.experiment is empty; name the experiment, e.g. tracking.experiment=nnexp"
        )
    if len(str(cfg.tracking.experiment)) > MAX_EXPERIMENT_NAME:
        raise UserError(
            f"tracking.experiment is {len(str(cfg.tracking.experiment))} characters long, more "
            f"than the {MAX_EXPERIMENT_NAME} a store's experiment name (and its artifact folder) "
            "can hold; choose a shorter name"
        )
    _check_dataset(cfg.dataset)


def _known_keys(node: DictConfig, schema: type, prefix: str) -> None:
    """Every key of ``node`` is a field of ``schema``; nested dataclass fields are checked too."""
    known = {f.name: f for f in fields(schema)}
    for key in node:
        if key not in known:
            raise UserError(
                f"{prefix}{key} is not a key nnexp knows ({prefix.rstrip('.') or 'the config'} has "
                f"{', '.join(known)}); remove +{prefix}{key}"
            )
        nested = known[key].default_factory
        if is_dataclass(nested):
            _known_keys(node[key], nested, f"{prefix}{key}.")


def _check_optim(optim: DictConfig) -> None:
    """optim.name is a registered optimizer, its keys are that optimizer's, and each option
    lies in its range."""
    if optim.name not in OPTIMIZERS:
        raise UserError(
            f"optim.name={optim.name} is not an optimizer nnexp knows; choose one of "
            f"{', '.join(OPTIMIZERS)} with optim=NAME"
        )
    _known_keys(optim, OPTIM_SCHEMAS[optim.name], "optim.")
    for key, (low, high, high_included) in OPTIMIZERS[optim.name].cls.options.items():
        value = optim[key]
        if not (low <= value <= high if high_included else low <= value < high):
            bound = f"≤ {high}" if high_included else f"< {high}"
            example = (low + high) / 2
            raise UserError(
                f"optim.{key}={value} must be ≥ {low} and {bound}, e.g. optim.{key}={example:g}"
            )


def _check_dataset(dataset: DictConfig) -> None:
    if "test_fraction" in dataset and not 0 < dataset.test_fraction < 1:
        raise UserError(
            f"dataset.test_fraction={dataset.test_fraction} must lie strictly between 0 and 1, "
            "e.g. 0.2"
        )
    _at_least(dataset, "seed", 0, prefix="dataset.")
    for key, low in (("n", 2), ("d", 1), ("k", 1), ("noise", 0.0)):
        if key in dataset:
            _at_least(dataset, key, low, prefix="dataset.")
    if "noise" in dataset and not math.isfinite(dataset.noise):
        raise UserError(f"dataset.noise={dataset.noise} must be finite, e.g. dataset.noise=0.1")


def _value(cfg: DictConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _at_least(cfg: DictConfig, key: str, low: float, hint: str = "", prefix: str = "") -> None:
    value = _value(cfg, key)
    if value < low:
        suffix = f" {hint}" if hint else ""
        raise UserError(
            f"{prefix}{key}={value} must be ≥ {low}; pass {prefix}{key}={low} or more{suffix}"
        )


def _positive_finite(cfg: DictConfig, key: str) -> None:
    value = _value(cfg, key)
    if not (value > 0 and math.isfinite(value)):
        raise UserError(f"{key}={value} must be a positive finite number, e.g. {key}=0.5")
