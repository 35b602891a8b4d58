"""Config strings are data: every config Hydra composes for nnexp (command line, conf/,
experiments/*.yaml, a --config-dir, a --config-name, a defaults entry) is checked before Hydra
builds anything from it.

The ``hydra`` node is held to an allow-list: apart from the keys a user may set
(``ALLOWED_HYDRA_KEYS``: run and sweep folders, sweeper and launcher settings, job name and
chdir, verbosity) and the ones Hydra fills itself, it must equal the one nnexp composes from its
own conf/ with the same launcher and sweeper, and only ``hydra/launcher`` and ``hydra/sweeper``
may be chosen. Everywhere: the only resolvers are ``ALLOWED_RESOLVERS`` (read by OmegaConf's own
grammar, and refused even behind an escape); a ``_target_`` only nnexp's callback or an installed
plugin's; no logging factory or class outside :mod:`logging`; no Optuna ``custom_search_space``
and no launcher ``setup`` from a file (code and shell lines)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from functools import cache, lru_cache
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nnexp import private_api
from nnexp.errors import UserError, first_line

#: Resolvers a config may use: the date and Hydra's own values. ``${a.b}`` references any key.
ALLOWED_RESOLVERS = frozenset({"hydra", "now"})
#: The ``hydra.*`` keys (and all below them) a config or override may set.
ALLOWED_HYDRA_KEYS = (
    "hydra.run.dir",
    "hydra.sweep.dir",
    "hydra.sweep.subdir",
    "hydra.sweeper",
    "hydra.launcher",
    "hydra.job.name",
    "hydra.job.chdir",
    "hydra.job.config.override_dirname",
    "hydra.verbose",
)
#: The ``hydra/…`` config groups a config or override may choose an option of.
ALLOWED_HYDRA_GROUPS = frozenset({"hydra/launcher", "hydra/sweeper"})
#: Keys Hydra fills itself as it composes and launches (whatever a file says is overwritten).
HYDRA_OWNED = (
    "hydra.runtime",
    "hydra.overrides",
    "hydra.mode",
    "hydra.job.config_name",
    "hydra.job.override_dirname",
    "hydra.job.id",
    "hydra.job.num",
)
#: Hydra-owned keys Hydra itself passes on as overrides (``-m`` becomes ``hydra.mode=MULTIRUN``).
HYDRA_OVERRIDES = frozenset({"hydra.mode"})
#: Callbacks Hydra may build, by key: nnexp's own.
CALLBACKS = {"mlflow_sweep": "nnexp.sweep.lifecycle.SweepParent"}
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
#: ``${name:`` or ``${${…}:`` whatever stands before it: an escape is no way around the list.
RESOLVER = re.compile(r"\$\{\s*(\$\{|[A-Za-z_][\w.\-]*\s*:)")
HINT = "nnexp configs are data"
_PARSER = OverridesParser.create()


def check_overrides(overrides: Sequence[str]) -> None:
    """Refuse a command-line override that calls a resolver nnexp does not allow, or sets or
    chooses a ``hydra`` key or group outside the allow-list (also through ``@package``)."""
    for override in overrides:
        _check_resolvers(override, f"the override {override!r}")
        try:
            parsed = _PARSER.parse_overrides([override])
        except OverrideParseException:
            continue  # Hydra's loader reports a malformed override itself
        for item in parsed:
            _check_override_key(item.key_or_group, item.package, override)


def _check_override_key(key: str, package: str | None, override: str) -> None:
    if package is not None and (package == "hydra" or package.startswith("hydra.")):
        raise UserError(f"the override {override!r} puts a config into hydra; {HINT}: remove it")
    if key.startswith("hydra/") and key not in ALLOWED_HYDRA_GROUPS:
        raise UserError(
            f"the override {override!r} chooses {key}; a config may choose only "
            f"{' and '.join(sorted(ALLOWED_HYDRA_GROUPS))}, and {HINT}: remove it"
        )
    hydra_key = key == "hydra" or key.startswith("hydra.")
    if hydra_key and not _allowed(key) and key not in HYDRA_OVERRIDES:
        raise UserError(_not_allowed(key, f"the override {override!r}"))


def _allowed(key: str) -> bool:
    return key.startswith(tuple(f"{allowed}." for allowed in ALLOWED_HYDRA_KEYS)) or (
        key in ALLOWED_HYDRA_KEYS
    )


def _not_allowed(key: str, where: str) -> str:
    return (
        f"{where} changes {key}; {HINT}, and under hydra a config may set only run.dir, "
        "sweep.dir, sweep.subdir, sweeper.*, launcher.*, job.name, job.chdir, "
        "job.config.override_dirname.* and verbose: remove it"
    )


def check_composed(cfg: DictConfig, typed: frozenset[str] = frozenset()) -> None:
    """Refuse a composed config (with its ``hydra`` node) that would run code or read the
    environment; the message names the key. A launcher's ``setup`` lines stay allowed when the
    user typed them on the command line (``typed``: the keys the overrides set): a cluster job
    may need its ``module load``, but no config file may slip shell lines in."""
    for path, key, value in _leaves(OmegaConf.to_container(cfg, resolve=False), ""):
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


def _choices_and_leaves(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``hydra/…`` choices of a composed config and its ``hydra`` node's leaves."""
    return (
        OmegaConf.to_container(cfg.hydra.runtime.choices),
        _flat(OmegaConf.to_container(cfg.hydra, resolve=False), "hydra"),
    )


def _check_hydra(cfg: DictConfig, expected: dict[str, Any], own: dict[str, Any]) -> None:
    choices, given = _choices_and_leaves(cfg)
    for group, option in choices.items():
        chosen = group.startswith("hydra/") and group not in ALLOWED_HYDRA_GROUPS
        if chosen and option != expected.get(group):
            raise UserError(
                f"the config chooses {group}: {option}; a config may choose only "
                f"{' and '.join(sorted(ALLOWED_HYDRA_GROUPS))}, and {HINT}: remove it"
            )
    differing = [
        key
        for key in [*given, *(key for key in own if key not in given)]
        if given.get(key, _ABSENT) != own.get(key, _ABSENT)
        and not key.startswith(HYDRA_OWNED)
        and not _allowed(key)
    ]
    if differing:
        raise UserError(_not_allowed(differing[0], "the config"))
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    for key in params:
        _check_override_key(str(key), None, f"hydra.sweeper.params.{key}")


_ABSENT = object()


def _flat(tree: Any, path: str) -> dict[str, Any]:
    """{dotted path: value} of every leaf (an empty mapping or list is a leaf)."""
    if isinstance(tree, dict) and tree:
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{path}.{key}").items()}
    return {path: tree}


def _leaves(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(parent path, key, value) of every key of a plain tree, containers included."""
    if isinstance(node, dict):
        items = [(str(key), child) for key, child in node.items()]
    elif isinstance(node, list):
        items = [(str(index), child) for index, child in enumerate(node)]
    else:
        return
    for key, child in items:
        yield path, key, child
        yield from _leaves(child, f"{path}.{key}".lstrip("."))


def _check_resolvers(text: str, where: str) -> None:
    for name in sorted(_resolvers(text) - ALLOWED_RESOLVERS):
        raise UserError(
            f"{where} uses the resolver ${{{name}:…}}, which nnexp does not allow (only "
            f"{', '.join(sorted(ALLOWED_RESOLVERS))} and references to keys); {HINT}: write the "
            "value itself"
        )


@lru_cache(maxsize=4096)
def _resolvers(text: str) -> frozenset[str]:
    """Every resolver ``text`` calls as OmegaConf reads it, and every one written in it."""
    if "${" not in text:
        return frozenset()
    return frozenset({*private_api.resolver_names(text), *_written_resolvers(text)})


def _written_resolvers(text: str) -> list[str]:
    """The name of every ``${name:`` written in ``text``, escaped or not."""
    return [match.rstrip(": \t") for match in RESOLVER.findall(text)]


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


def check_values(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """The checks of a config's overrides and strings (``check_overrides``, ``check_composed``),
    for a copy of a checked config with value overrides applied (they set no hydra key)."""
    check_overrides(overrides)
    check_composed(cfg, frozenset(_override_key(override) for override in overrides))


def check_loaded(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Every check of a config Hydra composed with these overrides (their keys are typed):
    ``check_values`` and the allow-list of the ``hydra`` node against nnexp's own composition."""
    check_values(cfg, overrides)
    choices = cfg.hydra.runtime.choices
    _check_hydra(cfg, *_reference_leaves(choices["hydra/launcher"], choices["hydra/sweeper"]))


@cache
def _reference_leaves(launcher: str, sweeper: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return _choices_and_leaves(reference(launcher, sweeper))


@cache
def reference(launcher: str, sweeper: str) -> DictConfig:
    """nnexp's own config composed from its conf/ alone, with this launcher and sweeper."""
    from nnexp.config.schema import CONF_DIR

    try:
        return private_api.compose_unchecked(
            CONF_DIR, "config", [f"hydra/launcher={launcher}", f"hydra/sweeper={sweeper}"], False
        )
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(
            f"hydra/launcher={launcher} with hydra/sweeper={sweeper}: {first_line(err)}; a config "
            f"may choose only the launchers and sweepers of nnexp and installed plugins ({HINT})"
        ) from None


def _override_key(override: str) -> str:
    """The key an override sets: ``+a.b=1`` → ``a.b``."""
    return override.split("=", 1)[0].lstrip("+~")


def checked_hydra() -> AbstractContextManager[None]:
    """The context in which nnexp-train runs Hydra: every config Hydra's loader composes (the
    run's, each sweep job's) passes ``check_loaded`` before Hydra configures logging or builds
    callbacks, launchers and sweepers from it."""
    return private_api.checked_composition(check_overrides, check_loaded)
