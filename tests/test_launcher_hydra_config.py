"""The nnexp launcher makes HydraConfig each job's, as Hydra's ``run_job`` does, without copying
the hydra node for each job of one shape: what ``HydraConfig.get()`` and ``${hydra:…}`` give a
job equals what Hydra's ``set_config`` of that job's config gives. Real Hydra composition."""

from __future__ import annotations

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.core.utils import setup_globals
from hydra.types import HydraContext, RunMode
from omegaconf import OmegaConf

from conftest import REPO
from hydra_plugins.nnexp_launchers.batched import BatchedLauncher
from hydra_plugins.nnexp_sweeper.compose_once import ComposedConfigs
from nnexp.config import safe as safe_config
from nnexp.config import schema as config


def test_each_job_sees_its_own_hydra_config(tmp_path):
    config.register_schemas()
    setup_globals()  # the ${hydra:…} resolver
    Plugins.instance()
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(REPO / "conf")))
    previous = HydraConfig.instance().cfg
    with safe_config.checked_hydra():
        master = loader.load_configuration(
            config_name="config",
            overrides=[f"hydra.sweep.dir={tmp_path}"],
            run_mode=RunMode.MULTIRUN,
        )
        launcher = BatchedLauncher()
        context = HydraContext(config_loader=ComposedConfigs(loader), callbacks=None)
        launcher.setup(hydra_context=context, task_function=None, config=master)
        named = "tracking.experiment=e${hydra:job.num}"
        jobs = [["seed=0", named], ["seed=1", named], ["optim=sgd", named]]
        try:
            for num, overrides in enumerate(jobs):
                cfg, output_dir = launcher.job_config(overrides, num)
                got = OmegaConf.to_container(HydraConfig.instance().cfg, resolve=False)
                assert HydraConfig.get().job.num == num and cfg.tracking.experiment == f"e{num}"
                assert HydraConfig.get().runtime.output_dir == str(output_dir.absolute())
                HydraConfig.instance().set_config(cfg)  # what Hydra's run_job does
                assert got == OmegaConf.to_container(HydraConfig.instance().cfg, resolve=False)
                assert got["hydra"]["overrides"]["task"][-len(overrides) :] == overrides
        finally:
            HydraConfig.instance().cfg = previous
