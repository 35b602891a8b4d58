"""One contract test per private Hydra, OmegaConf, submitit, MLflow or joblib API that nnexp
uses (all of them in nnexp.private_api): a release that changes one fails here, naming what
changed."""

from __future__ import annotations

import dataclasses
import signal
import sys

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.types import RunMode
from omegaconf import OmegaConf

from nnexp import private_api
from nnexp.config import schema as config

PARSER = OverridesParser.create()


@pytest.fixture(scope="module", autouse=True)
def _schemas() -> None:
    config.register_schemas()


def compose(*overrides: str):
    return private_api.compose_unchecked(config.CONF_DIR, "config", list(overrides), False)


def test_checked_composition_sees_every_composition_and_restores_hydra():
    original = private_api.ConfigLoaderImpl.load_configuration
    seen_overrides, seen_configs = [], []
    checks = (seen_overrides.append, lambda cfg, overrides: seen_configs.append((cfg, overrides)))
    loader = private_api.config_loader(config.CONF_DIR)
    with private_api.checked_composition(*checks):
        cfg = loader.load_configuration("config", ["model.hidden=3"], RunMode.RUN)
    assert seen_overrides == [["model.hidden=3"]], (
        "ConfigLoaderImpl.load_configuration(config_name, overrides, run_mode) changed its "
        "signature: nnexp's check of every composition no longer sees the overrides"
    )
    assert seen_configs == [(cfg, ["model.hidden=3"])] and cfg.model.hidden == 3
    assert private_api.ConfigLoaderImpl.load_configuration is original, (
        "the check outlived nnexp's run"
    )


def test_a_refused_override_stops_composition_before_it_starts():
    def refuse(overrides):
        raise RuntimeError("refused")

    loader = private_api.config_loader(config.CONF_DIR)
    with (
        private_api.checked_composition(refuse, lambda cfg, o: None),
        pytest.raises(RuntimeError, match="refused"),
    ):
        loader.load_configuration("config", [], RunMode.RUN)


def compose_as_hydra_main(loader, overrides: list[str], mode: RunMode, extend: bool):
    """Hydra.get_mode's composition then Hydra.run's (or multirun's), inside
    checked_composition: (the probe, the config to run)."""
    with private_api.checked_composition(lambda o: None, lambda cfg, o: None):
        probe = loader.load_configuration("config", overrides, RunMode.MULTIRUN, True, False)
        added = [f"hydra.mode={mode.name}"] if extend else []
        return probe, loader.load_configuration("config", [*overrides, *added], mode)


@pytest.mark.parametrize(
    ("overrides", "mode", "extend"),
    [
        ([], RunMode.RUN, True),
        (["model.hidden=3", "optim=momentum", "hydra/launcher=joblib"], RunMode.RUN, True),
        (["hydra.mode=RUN"], RunMode.RUN, False),
        (["optim.lr=0.1,0.2", "seed=1"], RunMode.MULTIRUN, True),
    ],
)
def test_the_config_hydra_runs_is_its_mode_probe_finished_as_hydra_composes_it(
    overrides, mode, extend
):
    loader = private_api.config_loader(config.CONF_DIR)
    probe, finished = compose_as_hydra_main(loader, overrides, mode, extend)
    added = [f"hydra.mode={mode.name}"] if extend else []
    fresh = loader.load_configuration("config", [*overrides, *added], mode)
    assert finished is probe, "the mode probe was composed again"
    assert OmegaConf.to_yaml(finished) == OmegaConf.to_yaml(fresh), (
        "ConfigLoaderImpl._load_configuration_impl composes a RUN or MULTIRUN config otherwise "
        "than its MULTIRUN probe with hydra.mode set: compose it again in _finish_mode_probe"
    )


def test_a_sweep_override_without_multirun_is_refused_as_hydra_refuses_it():
    loader = private_api.config_loader(config.CONF_DIR)
    with pytest.raises(Exception) as hydras:
        loader.load_configuration("config", ["optim.lr=0.1,0.2", "hydra.mode=RUN"], RunMode.RUN)
    with pytest.raises(type(hydras.value)) as finished:
        compose_as_hydra_main(loader, ["optim.lr=0.1,0.2"], RunMode.RUN, True)
    assert str(finished.value) == str(hydras.value)


def test_a_missing_default_is_composed_again_for_a_run(tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "sqlite.yaml").write_text("file: x\n")
    (tmp_path / "config.yaml").write_text("defaults:\n  - db: ???\n  - _self_\n")
    loader = private_api.config_loader(tmp_path)
    with pytest.raises(Exception, match="You must specify 'db'"):
        compose_as_hydra_main(loader, [], RunMode.RUN, True)
    probe, finished = compose_as_hydra_main(loader, ["db=sqlite"], RunMode.RUN, True)
    assert finished is probe and finished.db.file == "x"


def test_inside_the_composition_a_copy_of_the_config_store_is_the_store():
    from hydra._internal.config_repository import CachingConfigRepository
    from hydra.core.config_store import ConfigStore

    repository = private_api.config_loader(config.CONF_DIR).repository
    outside = CachingConfigRepository(repository).delegate.get_schema_source().store
    with private_api.shared_config_store():
        inside = CachingConfigRepository(repository).delegate.get_schema_source().store
    assert outside is not ConfigStore.instance(), (
        "CachingConfigRepository no longer deep-copies the ConfigStore: shared_config_store can go"
    )
    assert inside is ConfigStore.instance() and "__deepcopy__" not in vars(ConfigStore)
    first, second = (ConfigStore.instance().load("nnexp_schema.yaml") for _ in range(2))
    assert first.node is not second.node, (
        "ConfigStore.load no longer copies the node it returns: a shared store could be changed "
        "by one composition for the next, so shared_config_store must go"
    )


def test_compose_unchecked_is_nnexps_config_with_hydras_node_outside_the_check():
    def refuse(*args):
        raise AssertionError("compose_unchecked went through ConfigLoaderImpl.load_configuration")

    with private_api.checked_composition(refuse, refuse):
        cfg = compose("hydra/launcher=joblib")
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "joblib", (
        "ConfigLoaderImpl._load_configuration_impl no longer composes the hydra node with "
        "hydra.runtime.choices"
    )
    assert cfg.hydra.callbacks.mlflow_sweep._target_ == "nnexp.sweep.lifecycle.SweepParent"


def test_a_node_set_under_another_config_resolves_against_it():
    first = OmegaConf.create({"lr": 1, "hydra": {"job": {"lr": "${lr}"}}})
    second = OmegaConf.create({"lr": 2})
    private_api.set_parent(first.hydra, second)
    assert first.hydra._get_parent() is second, "OmegaConf's Node._set_parent changed"
    assert first.hydra.job.lr == 2, (
        "a node's interpolations no longer resolve against the root of the parent it was set "
        "under: the launcher's in-place HydraConfig (sweep.launching) would read another job's"
    )


def test_value_overrides_apply_to_a_composed_config():
    cfg = compose()
    private_api.apply_value_overrides(PARSER.parse_overrides(["model.hidden=5"]), cfg)
    assert cfg.model.hidden == 5, (
        "ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg) changed: nnexp's sweeper "
        "builds each job with it"
    )


def test_overrides_dirname_is_hydras():
    cfg = compose()
    overrides = PARSER.parse_overrides(["seed=2", "model.hidden=5"])
    naming = OmegaConf.merge(cfg.hydra.job.config.override_dirname, {"exclude_keys": ["seed"]})
    assert private_api.overrides_dirname(overrides, naming) == "model.hidden=5", (
        "hydra._internal.config_loader_impl.get_overrides_dirname changed its keywords or result"
    )


def test_basic_sweeper_is_the_class_hydra_instantiates():
    Plugins.instance()  # the plugin scan executes hydra's core plugin modules again
    sweeper, conf = private_api.basic_sweeper()
    module = sys.modules["hydra._internal.core_plugins.basic_sweeper"]
    assert sweeper is module.BasicSweeper and conf is module.BasicSweeperConf, (
        "hydra._internal.core_plugins.basic_sweeper no longer holds BasicSweeper(Conf)"
    )
    assert {"max_batch_size", "params"} <= set(conf.__dataclass_fields__)


def test_split_sweep_gives_the_basic_sweepers_batches():
    batches = private_api.split_sweep(PARSER.parse_overrides(["a=1,2", "b=3"]))
    assert batches == [[["a=1", "b=3"], ["a=2", "b=3"]]], (
        "BasicSweeper.split_arguments(overrides, max_batch_size) changed its result"
    )


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("${now:%H}/${a.b}", ["now"]),
        ("\\${oc.env:X}", []),
        ("\\\\${oc.env:X}", ["oc.env"]),
        ("${oc.env:${oc.decode:'1'}}", ["oc.decode", "oc.env"]),
        ("${${x}:y}", ["${x}"]),
        ("${oc.env:", []),
    ],
)
def test_resolver_names_follow_omegaconfs_grammar(text, names):
    assert sorted(private_api.resolver_names(text)) == sorted(names), (
        "omegaconf.grammar_parser.parse or OmegaConfGrammarParser.InterpolationResolverContext "
        "changed: the resolvers of a string are no longer read as OmegaConf reads them"
    )


def test_submitits_requeue_signal():
    sig = private_api.submitit_usr_sig()
    assert sig == signal.SIGUSR2, "submitit.JobEnvironment._usr_sig() changed"


def test_hydra_ray_launchers_schema():
    conf, ray_conf = private_api.ray_launcher_schema()
    fields = {field.name: field for field in dataclasses.fields(conf)}
    assert "_target_" in fields and fields["ray"].default_factory().__class__ is ray_conf, (
        "hydra_ray_launcher._config.RayLauncherConf changed: nnexp's ray launcher config extends it"
    )
    assert ray_conf().init == {"address": None} and ray_conf().remote == {}


def test_mlflows_sql_store_reads_many_runs_history_at_once(store):
    from mlflow import MlflowClient

    client = MlflowClient(store)
    experiment = client.create_experiment("contract")
    runs = [client.create_run(experiment).info.run_id for _ in range(2)]
    for offset, run_id in enumerate(runs):
        for step in range(3):
            client.log_metric(run_id, "test_cost", step + 10 * offset, step=step)
    bulk = private_api.metric_history_bulk(client)
    assert bulk is not None, "MlflowClient._tracking_client.store.get_metric_history_bulk is gone"
    found = sorted((m.run_id, m.step, m.value) for m in bulk(runs, "test_cost", None))
    expected = sorted(
        (run_id, m.step, m.value)
        for run_id in runs
        for m in client.get_metric_history(run_id, "test_cost")
    )
    assert found == expected, (
        "get_metric_history_bulk no longer returns what get_metric_history does"
    )


def test_pinned_requirements_are_checked_without_mapping_every_distribution(monkeypatch):
    from importlib.metadata import version

    import importlib_metadata
    from mlflow.utils import requirements_utils as module

    def refuse():
        raise AssertionError("packages_distributions was called")

    monkeypatch.setattr(module, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(importlib_metadata, "packages_distributions", refuse)
    saved = module._MODULES_TO_PACKAGES, module._PACKAGES_TO_MODULES
    with private_api.pinned_requirements():
        assert module._check_requirement_satisfied(f"numpy=={version('numpy')}") is None, (
            "requirements_utils._check_requirement_satisfied refuses a pin of the installed numpy"
        )
        mismatch = module._check_requirement_satisfied("numpy==0.0.1")
    assert mismatch is not None and mismatch.installed_version == version("numpy"), (
        "requirements_utils no longer reads a version from the metadata when its map is empty"
    )
    assert saved == (module._MODULES_TO_PACKAGES, module._PACKAGES_TO_MODULES), (
        "requirements_utils' module maps were not put back"
    )


def test_lokys_resource_tracker_starts_and_says_so():
    from joblib.externals.loky.backend import resource_tracker

    private_api.start_loky_resource_tracker()
    tracker = resource_tracker._resource_tracker
    assert tracker._pid is not None and tracker._check_alive(), (
        "joblib.externals.loky.backend.resource_tracker.ensure_running no longer starts the tracker"
    )


def bulk_record(name: str):
    """A finished run's records: tags, params, two curves with a NaN and an infinity, a dataset
    input."""
    import mlflow
    import numpy as np
    from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag

    data = mlflow.data.from_numpy(np.arange(6.0).reshape(3, 2), targets=np.ones(3), name="toy")
    curve = [1.0, 0.5, float("nan"), float("inf"), 0.25]
    return private_api.RunRecord(
        name=name,
        status="FINISHED",
        start_time=1_700_000_000_000,
        end_time=1_700_000_005_000,
        tags=[RunTag("mlflow.user", "ada"), RunTag("nnexp.status", "finished")],
        params=[Param("optim.lr", "0.5"), Param("seed", "3")],
        metrics=[Metric("train_cost", v, 1_700_000_004_000, s) for s, v in enumerate(curve)]
        + [Metric("test_cost", 2.0 - s, 1_700_000_004_000, s) for s in range(3)],
        datasets=[
            DatasetInput(data._to_mlflow_entity(), [InputTag("mlflow.data.context", "training")])
        ],
    )


def test_runs_written_in_bulk_read_back_as_the_public_clients(tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert private_api.writes_in_bulk(client)
    experiment = client.create_experiment("contract")
    record = bulk_record("public")
    public = client.create_run(
        experiment, start_time=record.start_time, tags={t.key: t.value for t in record.tags},
        run_name="public",
    ).info.run_id  # fmt: skip
    client.log_inputs(public, record.datasets)
    client.log_batch(public, metrics=record.metrics, params=record.params)
    client.set_terminated(public, "FINISHED", end_time=record.end_time)
    uploaded = []
    (bulk,) = private_api.write_runs_in_bulk(
        client, experiment, [bulk_record("bulk")], lambda *args: uploaded.append(args)
    )
    assert uploaded == [(bulk, client.get_run(bulk).info.artifact_uri)]
    assert client.get_run(bulk).info.artifact_uri.endswith(f"/{bulk}/artifacts")
    got, want = client.get_run(bulk), client.get_run(public)
    skip = {"run_id", "run_uuid", "run_name", "artifact_uri"}
    info = {k: v for k, v in dict(got.info).items() if k not in skip}
    assert info == {k: v for k, v in dict(want.info).items() if k not in skip}, (
        "a run written through MLflow's SqlRun model no longer reads back as create_run's"
    )
    assert got.data.params == want.data.params and got.data.metrics == want.data.metrics
    assert {**got.data.tags, "mlflow.runName": "public"} == want.data.tags
    for key in ("train_cost", "test_cost"):
        points = {
            run: [(m.step, repr(m.value), m.timestamp) for m in client.get_metric_history(run, key)]
            for run in (bulk, public)
        }  # repr: a NaN point equals a NaN point
        assert points[bulk] == points[public], (
            f"the {key} history written through SqlMetric differs from log_batch's"
        )
    dataset = [(i.dataset, i.tags) for i in got.inputs.dataset_inputs]
    assert dataset == [(i.dataset, i.tags) for i in want.inputs.dataset_inputs] and dataset
    for query, order in (
        ("metrics.test_cost < 1.5", ["metrics.train_cost DESC"]),
        ("params.`optim.lr` = '0.5' and tags.`nnexp.status` = 'finished'", ["params.seed"]),
        ("attributes.status = 'FINISHED'", ["attributes.start_time"]),
    ):
        found = client.search_runs([experiment], query, order_by=order)
        assert {r.info.run_id for r in found} == {bulk, public}, query


def test_runs_in_bulk_are_refused_by_a_store_that_is_not_sql(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    experiment = client.create_experiment("files")
    assert not private_api.writes_in_bulk(client)
    assert private_api.write_runs_in_bulk(client, experiment, [bulk_record("x")]) is None
    assert client.search_runs([experiment]) == []
