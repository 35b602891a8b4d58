"""Hydra's basic sweeper, composing each job's config once instead of twice.

The basic sweeper composes every job of a batch to reject a bad one before any job runs, and the
launcher then composes each again. ``ComposeOnceSweeper`` keeps the configs its check composed
and hands each to the launcher in place of the second composition (same overrides, same master
config: the same config). Selected by nnexp's conf/config.yaml as ``hydra/sweeper: nnexp``;
``hydra/sweeper=basic`` brings back Hydra's own."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class ComposeOnceSweeperConf(BasicSweeperConf):
    """The basic sweeper's settings (``max_batch_size``, ``params``)."""

    _target_: str = "hydra_plugins.nnexp_sweeper.compose_once.ComposeOnceSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="nnexp", node=ComposeOnceSweeperConf, provider="nnexp"
)


class ComposedConfigs:
    """A config loader that returns a job config composed ahead (once) instead of composing it
    again; every other call goes to the loader it wraps."""

    def __init__(self, loader: Any):
        self.loader = loader
        self.ready: dict[tuple[str, ...], DictConfig] = {}

    def compose_ahead(self, master_config: DictConfig, overrides: Sequence[str]) -> None:
        """Compose a job's config (raising on a bad one) and keep it for the launcher."""
        self.ready[tuple(overrides)] = self.loader.load_sweep_config(
            master_config=master_config, sweep_overrides=list(overrides)
        )

    def load_sweep_config(
        self, master_config: DictConfig, sweep_overrides: list[str]
    ) -> DictConfig:
        """The config composed ahead for these overrides (used once), else a fresh one."""
        ready = self.ready.pop(tuple(sweep_overrides), None)
        if ready is not None:
            return ready
        return self.loader.load_sweep_config(
            master_config=master_config, sweep_overrides=sweep_overrides
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def __getstate__(self) -> dict[str, Any]:
        return {"loader": self.loader, "ready": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class ComposeOnceSweeper(BasicSweeper):
    """BasicSweeper whose batch check composes each job for the launcher too."""

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Give the launcher a loader that reuses the check's compositions."""
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
