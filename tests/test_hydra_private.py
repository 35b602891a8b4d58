"""One contract test per private Hydra, OmegaConf or submitit API that nnexp uses (all of them
in nnexp.hydra_private): a release that changes one fails here, naming what changed."""

from __future__ import annotations

import signal
import sys

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.types import RunMode
from omegaconf import OmegaConf

from nnexp import config, hydra_private

PARSER = OverridesParser.create()


@pytest.fixture(scope="module", autouse=True)
def _schemas() -> None:
    config.register_schemas()


def compose(*overrides: str):
    return hydra_private.compose_unchecked(config.CONF_DIR, "config", list(overrides), False)


def test_checked_composition_sees_every_composition_and_restores_hydra():
    original = hydra_private.ConfigLoaderImpl.load_configuration
    seen_overrides, seen_configs = [], []
    checks = (seen_overrides.append, lambda cfg, overrides: seen_configs.append((cfg, overrides)))
    loader = hydra_private.config_loader(config.CONF_DIR)
    with hydra_private.checked_composition(*checks):
        cfg = loader.load_configuration("config", ["model.hidden=3"], RunMode.RUN)
    assert seen_overrides == [["model.hidden=3"]], (
        "ConfigLoaderImpl.load_configuration(config_name, overrides, run_mode) changed its "
        "signature: nnexp's check of every composition no longer sees the overrides"
    )
    assert seen_configs == [(cfg, ["model.hidden=3"])] and cfg.model.hidden == 3
    assert hydra_private.ConfigLoaderImpl.load_configuration is original, (
        "the check outlived nnexp's run"
    )


def test_a_refused_override_stops_composition_before_it_starts():
    def refuse(overrides):
        raise RuntimeError("refused")

    loader = hydra_private.config_loader(config.CONF_DIR)
    with (
        hydra_private.checked_composition(refuse, lambda cfg, o: None),
        pytest.raises(RuntimeError, match="refused"),
    ):
        loader.load_configuration("config", [], RunMode.RUN)


def test_compose_unchecked_is_nnexps_config_with_hydras_node_outside_the_check():
    def refuse(*args):
        raise AssertionError("compose_unchecked went through ConfigLoaderImpl.load_configuration")

    with hydra_private.checked_composition(refuse, refuse):
        cfg = compose("hydra/launcher=joblib")
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "joblib", (
        "ConfigLoaderImpl._load_configuration_impl no longer composes the hydra node with "
        "hydra.runtime.choices"
    )
    assert cfg.hydra.callbacks.mlflow_sweep._target_ == "nnexp.callbacks.SweepParent"


def test_value_overrides_apply_to_a_composed_config():
    cfg = compose()
    hydra_private.apply_value_overrides(PARSER.parse_overrides(["model.hidden=5"]), cfg)
    assert cfg.model.hidden == 5, (
        "ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg) changed: nnexp's sweeper "
        "builds each job with it"
    )


def test_overrides_dirname_is_hydras():
    cfg = compose()
    overrides = PARSER.parse_overrides(["seed=2", "model.hidden=5"])
    naming = OmegaConf.merge(cfg.hydra.job.config.override_dirname, {"exclude_keys": ["seed"]})
    assert hydra_private.overrides_dirname(overrides, naming) == "model.hidden=5", (
        "hydra._internal.config_loader_impl.get_overrides_dirname changed its keywords or result"
    )


def test_basic_sweeper_is_the_class_hydra_instantiates():
    Plugins.instance()  # the plugin scan executes hydra's core plugin modules again
    sweeper, conf = hydra_private.basic_sweeper()
    module = sys.modules["hydra._internal.core_plugins.basic_sweeper"]
    assert sweeper is module.BasicSweeper and conf is module.BasicSweeperConf, (
        "hydra._internal.core_plugins.basic_sweeper no longer holds BasicSweeper(Conf)"
    )
    assert {"max_batch_size", "params"} <= set(conf.__dataclass_fields__)


def test_split_sweep_gives_the_basic_sweepers_batches():
    batches = hydra_private.split_sweep(PARSER.parse_overrides(["a=1,2", "b=3"]))
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
    assert sorted(hydra_private.resolver_names(text)) == sorted(names), (
        "omegaconf.grammar_parser.parse or OmegaConfGrammarParser.InterpolationResolverContext "
        "changed: the resolvers of a string are no longer read as OmegaConf reads them"
    )


def test_submitits_requeue_signal():
    sig = hydra_private.submitit_usr_sig()
    assert sig == signal.SIGUSR2, "submitit.JobEnvironment._usr_sig() changed"
