"""Where a batched sweep job's time goes before it trains, in this process: ``python -m
benchmarks.launcher_pieces [JOBS]`` composes the grid's first JOBS configs (default 128) as the
nnexp sweeper does (one Hydra composition per shape, each job a copy with its values applied and
checked), then prepares each as the nnexp launcher does (number, folder, HydraConfig, the job's
config without its hydra node, its ``.hydra`` files, nnexp's check); CPU time per job of each
piece, untracked (no store)."""

from __future__ import annotations

import copy
import itertools
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.plugins import Plugins
from hydra.core.utils import setup_globals
from hydra.types import HydraContext, RunMode

from nnexp.config import safe as safe_config
from nnexp.config import schema as config

SPENT: dict[str, float] = defaultdict(float)


def timed(function: Callable, label: str) -> Callable:
    """``function``, its CPU time added to SPENT[label]."""

    def run(*args, **kwargs):
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[label] += time.process_time() - start

    return run


def main(jobs: int = 128) -> None:
    """Print the CPU time per job of each piece."""
    config.register_schemas()
    setup_globals()
    Plugins.instance()  # imports the plugin modules (again): patch them after
    from hydra_plugins.nnexp_launchers import batched
    from hydra_plugins.nnexp_sweeper import compose_once
    from nnexp.run import recipe
    from nnexp.sweep import jobs as sweep_jobs
    from nnexp.sweep import launching

    deepcopy = timed(copy.deepcopy, "compose: copy of the shape's config")
    compose_once.copy = type("copy", (), {"deepcopy": staticmethod(deepcopy)})
    compose_once.check_values = timed(compose_once.check_values, "compose: check of the values")
    compose_once.check_overrides = timed(
        compose_once.check_overrides, "compose: check of the overrides"
    )
    save_yaml = timed(launching.save_yaml, "launcher: .hydra/config.yaml, overrides.yaml")
    folder = tempfile.mkdtemp()
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(config.CONF_DIR)))
    with safe_config.checked_hydra():
        master = loader.load_configuration(
            config_name="config",
            overrides=[f"hydra.sweep.dir={folder}", "tracking.enabled=false"],
            run_mode=RunMode.MULTIRUN,
        )
        composed = compose_once.ComposedConfigs(loader)
        launcher = batched.BatchedLauncher()
        launcher.setup(
            hydra_context=HydraContext(config_loader=composed, callbacks=None),
            task_function=None,
            config=master,
        )
        grid = itertools.product(range(1, 9), (0, 0.001), range(8))
        overrides = [
            [f"optim.lr={lr}", f"regularization.l2={l2}", f"seed={seed}", "optim.epochs=100"]
            for lr, l2, seed in itertools.islice(grid, jobs)
        ]
        compose = timed(composed.compose_ahead, "compose (sweeper's check), whole")
        for job in overrides:
            compose(master, job)
        job_config = timed(launcher.job_config, "launcher: number, folder, HydraConfig")
        sweep_job = timed(sweep_jobs.sweep_job, "launcher: job config without hydra node")
        checked = timed(recipe.checked, "launcher: nnexp's check (data, weights)")
        for num, job in enumerate(overrides):
            cfg, output_dir = job_config(job, num)
            job_cfg, ctx = sweep_job(cfg, output_dir)
            (output_dir / ".hydra").mkdir(parents=True, exist_ok=True)
            save_yaml(job_cfg, output_dir / ".hydra" / "config.yaml")
            save_yaml(cfg.hydra.overrides.task, output_dir / ".hydra" / "overrides.yaml")
            checked(job_cfg, ctx)
    for label, seconds in sorted(SPENT.items()):
        print(f"{label:48s} {seconds / jobs * 1000:6.2f} ms/job")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
