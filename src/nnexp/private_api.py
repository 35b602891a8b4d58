"""Every use nnexp makes of a dependency's private API (Hydra, OmegaConf, submitit, MLflow's
store and requirement check, joblib's loky), one function each; tests/test_private_api.py holds
a contract test per use, so a release that changes one fails there by name instead of somewhere
in a sweep.

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

import inspect
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.utils import create_config_search_path
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import GrammarParseError
from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser
from omegaconf.grammar_parser import parse

__all__ = [
    "RunRecord",
    "apply_value_overrides",
    "basic_sweeper",
    "checked_composition",
    "compose_unchecked",
    "config_loader",
    "overrides_dirname",
    "pinned_requirements",
    "ray_launcher_schema",
    "resolver_names",
    "set_parent",
    "shared_config_store",
    "split_sweep",
    "submitit_usr_sig",
    "write_runs_in_bulk",
    "writes_in_bulk",
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
    configures logging or builds anything from it. Hydra composes the command's config twice,
    once to read ``hydra.mode`` (``Hydra.get_mode``) and once to run; the second is the first
    finished as Hydra would finish it (``_finish_mode_probe``), not composed again."""
    original = ConfigLoaderImpl.load_configuration
    probes: list[_ModeProbe] = []

    def load_configuration(self, *args, **kwargs):
        call = inspect.signature(original).bind(self, *args, **kwargs)
        call.apply_defaults()
        config_name, run_mode = call.arguments["config_name"], call.arguments["run_mode"]
        overrides, from_shell = list(call.arguments["overrides"]), call.arguments["from_shell"]
        validate = call.arguments["validate_sweep_overrides"]
        check_overrides(overrides)
        probe = probes.pop() if probes else None
        cfg = _finish_mode_probe(
            self, probe, overrides, run_mode, validate, config_name, from_shell
        )
        if cfg is None:
            cfg = original(*call.args, **call.kwargs)
            if run_mode == RunMode.MULTIRUN and not validate:
                probes.append(_ModeProbe(config_name, overrides, from_shell, cfg))
        check(cfg, overrides)
        return cfg

    ConfigLoaderImpl.load_configuration = load_configuration
    try:
        with shared_config_store():
            yield
    finally:
        ConfigLoaderImpl.load_configuration = original


@contextmanager
def shared_config_store() -> Iterator[None]:
    """While inside, a deep copy of Hydra's ``ConfigStore`` is the store itself. Each composition
    (and each config group ``--help`` lists) builds a ``CachingConfigRepository``, which deep-copies
    its repository so that re-initialising the sources leaves the original alone; that copies
    every registered schema (~70 ms each time), although the store is only read through
    ``ConfigStore.load``, which copies the node it returns."""
    had = "__deepcopy__" in vars(ConfigStore)
    saved = vars(ConfigStore).get("__deepcopy__")
    ConfigStore.__deepcopy__ = _same_store
    try:
        yield
    finally:
        if had:
            ConfigStore.__deepcopy__ = saved
        else:
            del ConfigStore.__deepcopy__


def _same_store(store: ConfigStore, memo: dict) -> ConfigStore:
    return store


@dataclass
class _ModeProbe:
    """What ``Hydra.get_mode`` composed (in MULTIRUN mode, sweep overrides unchecked) only to
    read ``hydra.mode`` from it."""

    config_name: str | None
    overrides: list[str]
    from_shell: bool
    cfg: DictConfig


def _finish_mode_probe(
    loader: ConfigLoaderImpl,
    probe: _ModeProbe | None,
    overrides: list[str],
    run_mode: RunMode,
    validate: bool,
    config_name: str | None,
    from_shell: bool,
) -> DictConfig | None:
    """The config Hydra's next composition (``Hydra.run`` or ``Hydra.multirun``) would compose,
    built from the mode probe, or None when it may differ. It may differ unless the overrides are
    the probe's, with at most ``hydra.mode=<run_mode>`` appended (what ``_run_app`` adds). A RUN
    composition refuses a missing default (``???``) where the probe skipped it, so then the probe
    is not used. Sweep overrides are checked for the mode when ``validate``, as Hydra's loader
    checks them."""
    if probe is None or (probe.config_name, probe.from_shell) != (config_name, from_shell):
        return None
    added = overrides[len(probe.overrides) :]
    if overrides[: len(probe.overrides)] != probe.overrides or added not in (
        [],
        [f"hydra.mode={run_mode.name}"],
    ):
        return None
    cfg = probe.cfg
    choices = cfg.hydra.runtime.choices
    if run_mode == RunMode.RUN and any(OmegaConf.is_missing(choices, key) for key in choices):
        return None
    parsed = OverridesParser.create().parse_overrides(overrides)
    if validate:
        loader.validate_sweep_overrides_legal(
            overrides=parsed, run_mode=run_mode, from_shell=from_shell
        )
    ConfigLoaderImpl._apply_overrides_to_config(parsed[len(probe.overrides) :], cfg)
    cfg.hydra.overrides.hydra.extend(added)
    return cfg


def set_parent(node: DictConfig, parent: DictConfig) -> None:
    """Hang ``node`` under ``parent`` (OmegaConf's ``_set_parent``), so its interpolations
    resolve against ``parent``'s root, without copying it."""
    node._set_parent(parent)


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
    with shared_config_store():
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


@contextmanager
def pinned_requirements() -> Iterator[None]:
    """While inside, MLflow checks a logged model's pinned requirements against the versions in
    the installed metadata without first mapping every installed distribution to its modules
    (``importlib_metadata.packages_distributions``, ~0.5 s of CPU over this venv's ~170
    distributions), a map only inferred requirements need: MLflow's map
    (``requirements_utils._MODULES_TO_PACKAGES``) is empty inside unless MLflow built it before,
    and both of its maps are put back on leaving."""
    from mlflow.utils import requirements_utils as module

    saved = module._MODULES_TO_PACKAGES, module._PACKAGES_TO_MODULES
    if saved[0] is None:
        module._MODULES_TO_PACKAGES = {}
    try:
        yield
    finally:
        module._MODULES_TO_PACKAGES, module._PACKAGES_TO_MODULES = saved


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


@dataclass
class RunRecord:
    """One finished run for ``write_runs_in_bulk``, in MLflow's public entities: what
    ``create_run`` (name, tags, start), ``log_inputs``, ``log_batch`` and ``set_terminated``
    would have written."""

    name: str
    status: str
    start_time: int
    end_time: int
    tags: list = field(default_factory=list)  # RunTag
    params: list = field(default_factory=list)  # Param
    metrics: list = field(default_factory=list)  # Metric
    datasets: list = field(default_factory=list)  # DatasetInput


def writes_in_bulk(client: Any) -> bool:
    """Whether ``write_runs_in_bulk`` writes into this client's store (an SQLite store)."""
    return _bulk_store(client) is not None


def _bulk_store(client: Any) -> Any:
    """The client's ``SqlAlchemyStore`` if it is an SQLite one, else None."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if isinstance(store, SqlAlchemyStore) and store.db_type == "sqlite":
        return store
    return None


def write_runs_in_bulk(
    client: Any,
    experiment_id: str,
    runs: Sequence[RunRecord],
    upload: Callable[[str, str], None] | None = None,
) -> list[str] | None:
    """Write ``runs`` (each already ended) into an SQLite store (MLflow's ``SqlAlchemyStore``;
    PostgreSQL and MySQL stores keep the public client until a test covers them) in one
    transaction through the store's own models and session: runs, tags, params, metric
    histories, latest metrics and dataset inputs, with the rows and checks MLflow's
    ``create_run``, ``log_inputs``, ``log_batch`` and ``set_terminated`` make. ``upload (run_id,
    artifact_uri)`` runs for each run before the transaction (its artifacts first, so no run is
    visible without them). Returns the run ids, or None (nothing written) for any other store: a
    tracking server, another database, a file store."""
    import sqlalchemy
    from mlflow.entities import LifecycleStage, RunStatus, RunTag, SourceType
    from mlflow.store.tracking.dbmodels import models
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_USER
    from mlflow.utils.uri import append_to_uri_path
    from mlflow.utils.validation import _validate_batch_log_data, _validate_dataset_inputs

    store = _bulk_store(client)
    if store is None:
        return None
    if not runs:
        return []
    experiment = store.get_experiment(experiment_id)
    store._check_experiment_is_active(experiment)
    datasets = _bulk_datasets(store, experiment_id, [d for run in runs for d in run.datasets])
    rows: dict[type, list[dict]] = {
        model: []
        for model in (
            models.SqlRun, models.SqlTag, models.SqlParam, models.SqlMetric,
            models.SqlLatestMetric, models.SqlInput, models.SqlInputTag,
        )
    }  # fmt: skip
    run_ids = []
    for run in runs:
        run_id = uuid.uuid4().hex
        artifact_uri = append_to_uri_path(
            experiment.artifact_location, run_id, store.ARTIFACTS_FOLDER_NAME
        )
        tags = [RunTag(MLFLOW_RUN_NAME, run.name), *run.tags]
        metrics, params, tags = _validate_batch_log_data(run.metrics, run.params, tags)
        _validate_dataset_inputs(run.datasets)
        user = next((tag.value for tag in tags if tag.key == MLFLOW_USER), "unknown")
        rows[models.SqlRun].append(
            dict(
                run_uuid=run_id, name=run.name, artifact_uri=artifact_uri,
                experiment_id=experiment_id, source_type=SourceType.to_string(SourceType.UNKNOWN),
                source_name="", entry_point_name="", user_id=user,
                status=RunStatus.to_string(RunStatus.from_string(run.status)),
                start_time=run.start_time, end_time=run.end_time, deleted_time=None,
                source_version="", lifecycle_stage=LifecycleStage.ACTIVE,
            )
        )  # fmt: skip
        rows[models.SqlTag] += [
            dict(run_uuid=run_id, key=key, value=value)
            for key, value in {tag.key: tag.value for tag in tags}.items()
        ]
        rows[models.SqlParam] += [dict(run_uuid=run_id, key=p.key, value=p.value) for p in params]
        written, latest = set(), {}
        for metric in metrics:
            is_nan, value = store.sanitize_metric_value(float(metric.value))
            row = dict(
                run_uuid=run_id, key=metric.key, value=value, timestamp=metric.timestamp,
                step=metric.step, is_nan=is_nan,
            )  # fmt: skip
            identity = (metric.key, value, metric.timestamp, metric.step, is_nan)
            if identity in written:
                continue
            written.add(identity)
            rows[models.SqlMetric].append(row)
            best = latest.get(metric.key)
            order = (row["step"], row["timestamp"], row["value"])
            if best is None or order > (best["step"], best["timestamp"], best["value"]):
                latest[metric.key] = row
        rows[models.SqlLatestMetric] += latest.values()
        for dataset_input in run.datasets:
            input_uuid = uuid.uuid4().hex
            key = (dataset_input.dataset.name, dataset_input.dataset.digest)
            rows[models.SqlInput].append(
                dict(
                    input_uuid=input_uuid, source_type="DATASET", source_id=datasets[key],
                    destination_type="RUN", destination_id=run_id,
                )
            )  # fmt: skip
            rows[models.SqlInputTag] += [
                dict(input_uuid=input_uuid, name=tag.key, value=tag.value)
                for tag in dataset_input.tags
            ]
        if upload is not None:
            upload(run_id, artifact_uri)
        run_ids.append(run_id)
    with store.ManagedSessionMaker(read_only=False) as session:
        for model, items in rows.items():
            if items:
                session.execute(sqlalchemy.insert(model), items)
    return run_ids


def _bulk_datasets(store: Any, experiment_id: str, inputs: Sequence[Any]) -> dict:
    """The uuid of each (name, digest) of ``inputs`` among the experiment's datasets, the missing
    ones created (as ``log_inputs`` does) in a transaction of their own; a second try reads those
    a concurrent writer created first."""
    from mlflow.exceptions import MlflowException

    try:
        return _find_or_create_datasets(store, experiment_id, inputs)
    except MlflowException:
        return _find_or_create_datasets(store, experiment_id, inputs)


def _find_or_create_datasets(store: Any, experiment_id: str, inputs: Sequence[Any]) -> dict:
    from mlflow.store.tracking.dbmodels.models import SqlDataset

    wanted = {(d.dataset.name, d.dataset.digest): d.dataset for d in inputs}
    found: dict = {}
    with store.ManagedSessionMaker(read_only=False) as session:
        for row in (
            session.query(SqlDataset)
            .filter(SqlDataset.experiment_id == experiment_id)
            .filter(SqlDataset.name.in_([name for name, _ in wanted]))
            .filter(SqlDataset.digest.in_([digest for _, digest in wanted]))
        ):
            found[row.name, row.digest] = row.dataset_uuid
        for key, dataset in wanted.items():
            if key not in found:
                found[key] = uuid.uuid4().hex
                session.add(
                    SqlDataset(
                        dataset_uuid=found[key], experiment_id=experiment_id,
                        name=dataset.name, digest=dataset.digest,
                        dataset_source_type=dataset.source_type, dataset_source=dataset.source,
                        dataset_schema=dataset.schema, dataset_profile=dataset.profile,
                    )
                )  # fmt: skip
    return found
