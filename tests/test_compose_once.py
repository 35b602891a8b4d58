"""The nnexp sweeper's composition (one Hydra composition per shape of overrides, each job a copy
with its values applied) gives exactly the config Hydra composes for the job, hydra node included,
and the same error for a bad value; and it composes each shape once."""

from __future__ import annotations

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.plugins import Plugins
from hydra.types import RunMode
from omegaconf import OmegaConf

from conftest import REPO
from hydra_plugins.nnexp_sweeper.compose_once import ComposedConfigs
from nnexp.config import safe as safe_config
from nnexp.config import schema as config

#: The hydra overrides a command line may carry into the master config.
HYDRA_OVERRIDES = [
    "hydra/launcher=joblib",
    "hydra.sweep.dir=/tmp/sweep",
    "hydra.job.config.override_dirname.exclude_keys=[seed]",
]

JOBS = {
    "values": ["model.hidden=3", "optim.epochs=5", "seed=2"],
    "group then its values": ["dataset=sine", "dataset.noise=0.2", "model.hidden=4"],
    "values then a group": ["optim.lr=0.5", "optim=sgd", "optim.batch_size=2"],
    "group choice only": ["regularization=l2"],
    "quoted string": ["tracking.experiment='a b, c'", "model.init=xavier"],
    "list value": ["dataset=csv", "dataset.path=data.csv", "dataset.target=y"],
    "no overrides": [],
}


@pytest.fixture(scope="module")
def loader_and_master():
    """Hydra's config loader on nnexp's conf/ (guarded as nnexp-train guards it) and a multirun
    master config."""
    config.register_schemas()
    Plugins.instance()
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(REPO / "conf")))
    with safe_config.checked_hydra():
        master = loader.load_configuration(
            config_name="config", overrides=HYDRA_OVERRIDES, run_mode=RunMode.MULTIRUN
        )
        yield loader, master


def as_data(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=False)


@pytest.mark.parametrize("overrides", list(JOBS.values()), ids=list(JOBS))
def test_a_job_is_the_config_hydra_composes(loader_and_master, overrides):
    loader, master = loader_and_master
    composed = ComposedConfigs(loader)
    for hidden in (7, 8):  # the second job of a shape comes from the first one's composition
        job = [*overrides, f"train.seeds={hidden - 6}"]
        expected = loader.load_sweep_config(master_config=master, sweep_overrides=job)
        assert as_data(composed.load_sweep_config(master, job)) == as_data(expected)


@pytest.mark.parametrize(
    "bad", ["model.hidden=abc", "model.depth=2", "optim.lr=[1,2"], ids=["type", "key", "syntax"]
)
def test_a_bad_value_raises_what_hydra_raises(loader_and_master, bad):
    loader, master = loader_and_master
    composed = ComposedConfigs(loader)
    composed.load_sweep_config(master, ["model.hidden=2"])
    with pytest.raises(Exception) as hydra_error:
        loader.load_sweep_config(master_config=master, sweep_overrides=[bad])
    with pytest.raises(Exception) as our_error:
        composed.load_sweep_config(master, [bad])
    assert type(our_error.value) is type(hydra_error.value)
    assert str(our_error.value) == str(hydra_error.value)


def test_each_shape_is_composed_once(loader_and_master, monkeypatch):
    loader, master = loader_and_master
    calls = []
    original = loader.load_sweep_config
    monkeypatch.setattr(
        loader, "load_sweep_config", lambda **kw: calls.append(kw) or original(**kw)
    )
    composed = ComposedConfigs(loader)
    for dataset in ("xor", "sine"):
        for hidden in range(1, 5):
            composed.compose_ahead(master, [f"dataset={dataset}", f"model.hidden={hidden}"])
    assert [kw["sweep_overrides"] for kw in calls] == [["dataset=xor"], ["dataset=sine"]]
    job = composed.load_sweep_config(master, ["dataset=sine", "model.hidden=3"])
    assert job.model.hidden == 3 and job.dataset.name == "sine"
    assert list(job.hydra.overrides.task) == ["dataset=sine", "model.hidden=3"]
