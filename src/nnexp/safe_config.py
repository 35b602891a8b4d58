"""Config strings are data: every config Hydra composes for nnexp (command line, conf/,
experiments/*.yaml, a --config-dir) is checked before Hydra builds anything from it.

Refused: a Hydra callback or ``_target_`` other than nnexp's own and the installed Hydra plugins'
(``hydra.utils.instantiate`` would import and call it); a logging factory (``()``, a ``class``
outside :mod:`logging`, ``ext://`` other than sys.stdout/stderr); an Optuna
``custom_search_space`` or a launcher ``setup`` (code and shell lines); ``hydra.job.env_set`` of
a variable that loads code (``LD_PRELOAD``, ``PYTHONPATH`` …); and any resolver that reads the
environment or builds nodes from strings (``oc.env``, ``oc.decode``, ``oc.create`` …)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from nnexp.errors import UserError

#: Resolvers a config may use: Hydra's own values and date, and selecting other keys.
ALLOWED_RESOLVERS = frozenset({"hydra", "now", "oc.select", "oc.dict.keys", "oc.dict.values"})
#: Callbacks Hydra may build, by key: nnexp's own.
CALLBACKS = {"mlflow_sweep": "nnexp.callbacks.SweepParent"}
#: Where other ``_target_`` keys may stand, and the packages they may name.
PLUGIN_KEYS = ("hydra.launcher", "hydra.sweeper", "hydra.sweeper.sampler")
PLUGIN_PACKAGES = ("hydra._internal.core_plugins.", "hydra_plugins.", "optuna.samplers.")
LOGGING_KEYS = ("hydra.job_logging", "hydra.hydra_logging")
LOGGING_CLASSES = frozenset(
    {"logging.StreamHandler", "logging.FileHandler", "logging.NullHandler", "logging.Formatter"}
)
LOGGING_STREAMS = frozenset({"ext://sys.stdout", "ext://sys.stderr"})
CODE_KEYS = {
    "hydra.sweeper.custom_search_space": "a function Optuna would import and call",
    "hydra.launcher.setup": "shell lines the launcher would run",
}
#: Code keys a user may set on the command line, where they are seen and meant.
TYPED_CODE_KEYS = frozenset({"hydra.launcher.setup"})
LOADER_VARIABLES = re.compile(r"^(LD_|DYLD_|PYTHON|BASH_ENV$|ENV$|PATH$|PERL5|RUBY)")
RESOLVER = re.compile(r"(?<!\\)\$\{\s*([A-Za-z_][\w.\-]*)\s*:")
HINT = "nnexp configs are data"


def check_overrides(overrides: list[str]) -> None:
    """Refuse a command-line override that calls a resolver nnexp does not allow."""
    for override in overrides:
        _check_resolvers(override, f"the override {override!r}")


def check_composed(cfg: DictConfig, typed: frozenset[str] = frozenset()) -> None:
    """Refuse a composed config (with its ``hydra`` node) that would run code or read the
    environment; the message names the key. A launcher's ``setup`` lines stay allowed when the
    user typed them on the command line (``typed``: the keys the overrides set): a cluster job
    may need its ``module load``, but no config file may slip shell lines in."""
    for path, key, value in _leaves(cfg, ""):
        where = f"{path}.{key}".lstrip(".")
        if isinstance(value, str):
            _check_resolvers(value, where)
        if key == "_target_":
            _check_target(path, value)
        elif path.startswith(LOGGING_KEYS):
            _check_logging(where, key, value)
        elif (
            where in CODE_KEYS
            and value not in (None, "", [])
            and where not in TYPED_CODE_KEYS & typed
        ):
            raise UserError(f"{where} names {CODE_KEYS[where]}; {HINT}: remove it")
    env_set = OmegaConf.select(cfg, "hydra.job.env_set") or {}
    loaders = [name for name in env_set if LOADER_VARIABLES.match(str(name))]
    if loaders:
        raise UserError(
            f"hydra.job.env_set.{loaders[0]} would make programs load other code; {HINT}: remove it"
        )
    callbacks = OmegaConf.select(cfg, "hydra.callbacks") or {}
    for name in callbacks:
        if name not in CALLBACKS:
            raise UserError(
                f"hydra.callbacks.{name} is not nnexp's; Hydra would build it and run its code, "
                f"and {HINT}: remove hydra.callbacks.{name}"
            )


def _leaves(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(parent path, key, raw value) of every key, interpolations left unresolved."""
    if isinstance(node, DictConfig):
        items = [(str(k), node._get_node(k)) for k in node]
    elif isinstance(node, ListConfig):
        items = [(str(i), node._get_node(i)) for i in range(len(node))]
    else:
        return
    for key, child in items:
        if isinstance(child, DictConfig | ListConfig):
            yield path, key, OmegaConf.to_container(child, resolve=False)
            yield from _leaves(child, f"{path}.{key}".lstrip("."))
        else:
            yield path, key, child._value()


def _check_resolvers(text: str, where: str) -> None:
    for name in RESOLVER.findall(text):
        if name not in ALLOWED_RESOLVERS:
            raise UserError(
                f"{where} uses the resolver ${{{name}:…}}, which reads the environment or turns "
                f"strings into config; {HINT}: write the value itself"
            )


def _check_target(path: str, target: Any) -> None:
    callback = path.removeprefix("hydra.callbacks.")
    if callback != path and CALLBACKS.get(callback) == target:
        return
    if path in PLUGIN_KEYS and str(target).startswith(PLUGIN_PACKAGES):
        return
    raise UserError(
        f"{path or 'the config'}._target_={target} would make Hydra import and call it; "
        f"{HINT}: remove it"
    )


def _check_logging(where: str, key: str, value: Any) -> None:
    if key == "()":
        raise UserError(f"{where} names a logging factory Python would call; {HINT}: remove it")
    if key == "class" and value not in LOGGING_CLASSES:
        raise UserError(
            f"{where}={value} is not one of {', '.join(sorted(LOGGING_CLASSES))}; {HINT}"
        )
    if isinstance(value, str) and value.startswith("ext://") and value not in LOGGING_STREAMS:
        raise UserError(f"{where}={value} would import a module; use ext://sys.stderr")


def check_loaded(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """``check_composed`` of a config composed with these overrides (their keys are typed)."""
    check_composed(cfg, frozenset(_override_key(override) for override in overrides))


def _override_key(override: str) -> str:
    """The key an override sets: ``+a.b=1`` → ``a.b``."""
    return override.split("=", 1)[0].lstrip("+~")


def guard_hydra() -> None:
    """Make Hydra's config loader check every config it composes (the run's, each sweep job's)
    before Hydra configures logging or builds callbacks, launchers and sweepers from it."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    original = ConfigLoaderImpl.load_configuration
    if getattr(original, "nnexp_checked", False):
        return

    def load_configuration(self, config_name, overrides, run_mode, *args, **kwargs):
        check_overrides(list(overrides))
        cfg = original(self, config_name, overrides, run_mode, *args, **kwargs)
        check_loaded(cfg, overrides)
        return cfg

    load_configuration.nnexp_checked = True
    ConfigLoaderImpl.load_configuration = load_configuration
