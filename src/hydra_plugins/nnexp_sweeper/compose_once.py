"""Hydra's basic sweeper, composing the sweep's config once instead of twice per job.

Hydra composes every job from scratch (search path, defaults tree, config files, typed schema),
and the basic sweeper does it twice: once to check the batch, once in the launcher. In a sweep
the jobs differ almost always by values only (``model.hidden=1..32``), and composing is most of a
short job's cost. ``ComposeOnceSweeper`` composes once per *shape* (the job's overrides that are
not plain values: group choices, ``+``/``~`` keys, sweeps) with Hydra's own loader, and builds
each job from a copy of it by Hydra's own override application; its check composes every job of
a batch (a bad one raises before any runs) and the launcher gets those configs. The result is the
config Hydra would compose (tests/test_compose_once.py compares them). Selected by nnexp's
conf/config.yaml as ``hydra/sweeper: nnexp``; ``hydra/sweeper=basic`` brings back Hydra's own."""

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from nnexp.config.safe import check_loaded, check_overrides, check_values
from nnexp.private_api import apply_value_overrides, basic_sweeper, overrides_dirname

BasicSweeper, BasicSweeperConf = basic_sweeper()


@dataclass
class ComposeOnceSweeperConf(BasicSweeperConf):
    """The basic sweeper's settings (``max_batch_size``, ``params``)."""

    _target_: str = "hydra_plugins.nnexp_sweeper.compose_once.ComposeOnceSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="nnexp", node=ComposeOnceSweeperConf, provider="nnexp"
)


class ComposedConfigs:
    """A config loader whose ``load_sweep_config`` composes once per shape of overrides and
    returns a job's config composed ahead (by the sweeper's check) when there is one; every
    other call goes to the loader it wraps."""

    def __init__(self, loader: Any):
        self.loader = loader
        self.parser = OverridesParser.create()
        self.shapes: dict[tuple[str, ...], DictConfig] = {}
        self.ready: dict[tuple[str, ...], tuple[DictConfig, tuple[str, ...]]] = {}
        #: The shape of the config ``load_sweep_config`` returned last: configs of one shape
        #: differ in their hydra node only by the job's overrides, number and folder.
        self.last_shape: tuple[str, ...] | None = None

    def compose_ahead(self, master_config: DictConfig, overrides: Sequence[str]) -> None:
        """Compose a job's config (raising on a bad one) and keep it for the launcher."""
        self.ready[tuple(overrides)] = self.compose_shaped(master_config, list(overrides))

    def load_sweep_config(
        self, master_config: DictConfig, sweep_overrides: list[str]
    ) -> DictConfig:
        """The config composed ahead for these overrides (used once), else a fresh one."""
        ready = self.ready.pop(tuple(sweep_overrides), None)
        if ready is None:
            ready = self.compose_shaped(master_config, sweep_overrides)
        cfg, self.last_shape = ready
        return cfg

    def compose(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """The job's config (``compose_shaped`` without its shape)."""
        return self.compose_shaped(master_config, sweep_overrides)[0]

    def compose_shaped(
        self, master_config: DictConfig, sweep_overrides: list[str]
    ) -> tuple[DictConfig, tuple[str, ...]]:
        """What Hydra's ``load_sweep_config`` returns: the shape's config composed by Hydra (once),
        copied, with the value overrides applied in order and the job's override lists set. The
        shape's config passes every check once (its hydra node among them: values set none),
        each job's the checks of its values and strings."""
        check_overrides(sweep_overrides)
        parsed = self.parser.parse_overrides(sweep_overrides)
        values = [o for o in parsed if self.is_value(o)]
        shape = tuple(o.input_line for o in parsed if not self.is_value(o))
        hydra_overrides = list(master_config.hydra.overrides.hydra)
        if shape not in self.shapes:
            shaped = self.loader.load_sweep_config(
                master_config=master_config, sweep_overrides=list(shape)
            )
            check_loaded(shaped, [*hydra_overrides, *shape])
            self.shapes[shape] = shaped
        cfg = copy.deepcopy(self.shapes[shape])
        apply_value_overrides(values, cfg)
        task = [o for o in parsed if not o.is_hydra_override()]
        naming = cfg.hydra.job.config.override_dirname
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in task]
            cfg.hydra.job.override_dirname = overrides_dirname(task, naming)
        check_values(cfg, [*hydra_overrides, *sweep_overrides])
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg, shape

    def is_value(self, override: Override) -> bool:
        """A plain ``key=value`` of a config key (not a group, not Hydra's, no package, no
        sweep): Hydra applies it to the composed config and it changes nothing else."""
        return (
            override.type == OverrideType.CHANGE
            and override.package is None
            and not override.is_sweep_override()
            and not override.is_hydra_override()
            and not self.loader.repository.group_exists(override.key_or_group)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def __getstate__(self) -> dict[str, Any]:
        """The loader and the shapes composed so far: a launcher that composes each job in a
        worker process (joblib, submitit, Ray) sends them along and the worker only copies."""
        return {"loader": self.loader, "shapes": self.shapes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["loader"])
        self.shapes.update(state["shapes"])


class ComposeOnceSweeper(BasicSweeper):
    """BasicSweeper whose jobs are composed once per shape, and once in all."""

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Give the launcher the loader that composes once and reuses the check's configs."""
        composed = ComposedConfigs(hydra_context.config_loader)
        super().setup(
            hydra_context=HydraContext(config_loader=composed, callbacks=hydra_context.callbacks),
            task_function=task_function,
            config=config,
        )

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Compose every job of the batch (a bad one raises before any job runs) and keep them."""
        assert self.hydra_context is not None and self.config is not None
        for overrides in batch:
            self.hydra_context.config_loader.compose_ahead(self.config, overrides)
