"""Every use nnexp makes of a dependency's private API (Hydra, OmegaConf, submitit, MLflow's
store, joblib's loky), one function each; tests/test_private_api.py holds a contract test per
use, so a release that changes one fails there by name instead of somewhere in a sweep.

Why composition is checked through Hydra's loader class (``checked_composition``) rather than
through something scoped to one loader: ``hydra.main`` builds its ``ConfigLoaderImpl`` inside
``hydra._internal.utils._run_hydra`` and composes with it at once; the first thing it does with
the result is configure logging from ``hydra.hydra_logging``, then build callbacks, sweeper and
launcher. No plugin point runs in between: a SearchPathPlugin sees the search path before
``--config-dir`` is prepended, a ConfigSource sees one file without the overrides, a sweeper or
callback runs after logging is configured. So the check wraps ``load_configuration`` of the class,
only while nnexp's own ``nnexp-train`` runs Hydra (a context manager restores it afterwards; no
import changes Hydra), and nnexp's sweeper checks the configs it composes itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.utils import create_config_search_path
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import GrammarParseError
from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser
from omegaconf.grammar_parser import parse

__all__ = [
    "apply_value_overrides",
    "basic_sweeper",
    "checked_composition",
    "compose_unchecked",
    "config_loader",
    "overrides_dirname",
    "ray_launcher_schema",
    "resolver_names",
    "split_sweep",
    "submitit_usr_sig",
]

#: check(cfg, overrides) of every config Hydra's loader composes inside ``checked_composition``.
Check = Callable[[DictConfig, Sequence[str]], None]


@contextmanager
def checked_composition(
    check_overrides: Callable[[Sequence[str]], None], check: Check
) -> Iterator[None]:
    """While inside, ``ConfigLoaderImpl.load_configuration`` (the run's, the multirun's, each
    basic or Optuna sweeper job's composition) first passes its overrides to
    ``check_overrides``, then the config it composed to ``check(cfg, overrides)``, before Hydra
    configures logging or builds anything from it."""
    original = ConfigLoaderImpl.load_configuration

    def load_configuration(self, config_name, overrides, run_mode, *args, **kwargs):
        check_overrides(list(overrides))
        cfg = original(self, config_name, overrides, run_mode, *args, **kwargs)
        check(cfg, list(overrides))
        return cfg

    ConfigLoaderImpl.load_configuration = load_configuration
    try:
        yield
    finally:
        ConfigLoaderImpl.load_configuration = original


def config_loader(conf_dir: Path) -> ConfigLoaderImpl:
    """Hydra's config loader over its own configs, ``conf_dir`` and the installed plugins' search
    paths: no ``--config-dir``, no user file."""
    return ConfigLoaderImpl(config_search_path=create_config_search_path(f"file://{conf_dir}"))


def compose_unchecked(
    conf_dir: Path, config_name: str, overrides: Sequence[str], multirun: bool
) -> DictConfig:
    """The config (with ``hydra``) Hydra composes from ``conf_dir``'s ``config_name`` with
    ``config_loader``, outside ``checked_composition``."""
    loader = config_loader(conf_dir)
    mode = RunMode.MULTIRUN if multirun else RunMode.RUN
    return _original_load(loader, config_name, list(overrides), mode)


def _original_load(loader: ConfigLoaderImpl, *args: Any) -> DictConfig:
    return ConfigLoaderImpl._load_configuration_impl(loader, *args)


def apply_value_overrides(overrides: list[Override], cfg: DictConfig) -> None:
    """Apply parsed ``key=value`` overrides to a composed config, as Hydra's loader does."""
    ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)


def overrides_dirname(overrides: list[Override], naming: DictConfig) -> str:
    """``hydra.job.override_dirname`` of these task overrides under ``hydra.job.config``'s
    ``override_dirname`` settings (kv_sep, item_sep, exclude_keys)."""
    return get_overrides_dirname(
        overrides=overrides,
        kv_sep=naming.kv_sep,
        item_sep=naming.item_sep,
        exclude_keys=naming.exclude_keys,
    )


def resolver_names(text: str) -> list[str]:
    """The resolver of every ``${name:…}`` OmegaConf would call when resolving ``text``, by its
    own grammar (so escapes read as OmegaConf reads them); a name built from an interpolation
    (``${${x}:…}``) is returned as written. A string OmegaConf cannot parse calls nothing."""
    try:
        tree = parse(text)
    except GrammarParseError:
        return []
    names: list[str] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, OmegaConfGrammarParser.InterpolationResolverContext):
            names.append(node.resolverName().getText())
        stack.extend(getattr(node, "children", None) or [])
    return names


def basic_sweeper() -> tuple[type, type]:
    """Hydra's ``BasicSweeper`` and its ``BasicSweeperConf``, looked up when called: Hydra's
    plugin scan executes its core plugin modules again, and a class bound earlier would be one
    that ``BasicSweeper``'s own ``super(BasicSweeper, self)`` no longer accepts."""
    from hydra._internal.core_plugins import basic_sweeper as module

    return module.BasicSweeper, module.BasicSweeperConf


def split_sweep(overrides: list[Override]) -> list[list[list[str]]]:
    """The basic sweeper's batches of jobs (each a list of overrides) for these overrides."""
    return basic_sweeper()[0].split_arguments(overrides, None)


def submitit_usr_sig() -> int:
    """The signal submitit's job environment uses for requeueing (SIGUSR2 unless configured)."""
    import submitit

    return submitit.JobEnvironment._usr_sig()


def ray_launcher_schema() -> tuple[type, type]:
    """hydra-ray-launcher's ``RayLauncherConf`` (the config of ``hydra/launcher=ray``) and its
    ``RayConf`` (``ray.init``, ``ray.remote``), from the plugin's private ``_config`` module
    (importing it stores the plugin's ``ray`` config, which nnexp's then replaces)."""
    from hydra_plugins.hydra_ray_launcher._config import RayConf, RayLauncherConf

    return RayLauncherConf, RayConf


def metric_history_bulk(client: Any) -> Callable[[list[str], str, Any], Any] | None:
    """The store's ``get_metric_history_bulk(run_ids, key, max_results)`` behind an MLflow
    client (SQL stores have it; the client does not expose it), or None where the store has
    none (a tracking server, files): one query for many runs' history of one metric."""
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    return getattr(store, "get_metric_history_bulk", None)


def start_loky_resource_tracker() -> None:
    """Start joblib's (loky's) resource tracker now, in this process, if it is not running."""
    from joblib.externals.loky.backend.resource_tracker import ensure_running

    ensure_running()
