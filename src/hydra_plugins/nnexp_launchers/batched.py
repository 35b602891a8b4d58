"""``hydra/launcher=nnexp`` (nnexp's default): the sweep's jobs run in the launching process with
none of Hydra's per-job set-up (no logging set-up, no chdir); same-shape jobs train as one batched
computation (``nnexp.sweep.batch``). Each job keeps its output folder, its ``.hydra/config.yaml``
and ``overrides.yaml`` (Hydra's settings, the same for every job, are the sweep folder's
``multirun.yaml``: no per-job ``hydra.yaml``), ``hydra.job.num`` and its own child run; the
sweeper gets a JobReturn with each job's objective."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)


@dataclass
class BatchedLauncherConf:
    """``n_jobs``: worker processes the groups are spread over (1: the launching process)."""

    _target_: str = "hydra_plugins.nnexp_launchers.batched.BatchedLauncher"
    n_jobs: int = 1


ConfigStore.instance().store(
    group="hydra/launcher", name="nnexp", node=BatchedLauncherConf, provider="nnexp"
)


def save_yaml(node: object, path: Path) -> None:
    """What Hydra writes into a job's ``.hydra/`` folder: the node as YAML, unresolved."""
    path.write_text(OmegaConf.to_yaml(node), encoding="utf-8")


class BatchedLauncher(Launcher):
    """Composes each job (through the sweeper's loader), writes its ``.hydra/`` files, hands the
    jobs to ``nnexp.sweep.batch`` and draws their test costs in one figure on the parent."""

    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = n_jobs
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        #: The shape whose hydra node HydraConfig holds (see ``_set_hydra_config``).
        self._hydra_shape: tuple[str, ...] | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Keep what ``launch`` needs."""
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Run the jobs; one JobReturn per job, in order, its value the job's objective."""
        from nnexp.errors import UserError
        from nnexp.sweep.batch import run_jobs

        assert self.config is not None and self.hydra_context is not None
        if self.n_jobs < 1:
            raise UserError(
                f"hydra.launcher.n_jobs={self.n_jobs}: give a number of worker processes >= 1 "
                "(1: the jobs run in this process)"
            )
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs in this process, same shapes batched")
        previous = HydraConfig.instance().cfg
        self._hydra_shape = None
        try:
            items = run_jobs(
                (
                    self._job(list(overrides), initial_job_idx + index)
                    for index, overrides in enumerate(job_overrides)
                ),
                on_end=self._end,
                workers=self.n_jobs,
            )
        finally:
            HydraConfig.instance().cfg = previous
        return [self._return(item) for item in items]

    def _job(self, overrides: list[str], num: int):
        """Compose the job, set its number and output folder, write its ``.hydra/`` files."""
        from nnexp.sweep.batch import SweepJob
        from nnexp.sweep.jobs import sweep_job

        log.info(f"\t#{num} : {' '.join(filter_overrides(overrides))}")
        config, output_dir = self.job_config(overrides, num)
        output_dir.mkdir(parents=True, exist_ok=True)
        cfg, ctx = sweep_job(config, output_dir)
        if config.hydra.output_subdir is not None:
            folder = output_dir / str(config.hydra.output_subdir)
            folder.mkdir(parents=True, exist_ok=True)
            save_yaml(cfg, folder / "config.yaml")
            save_yaml(config.hydra.overrides.task, folder / "overrides.yaml")
        self.hydra_context.callbacks.on_job_start(config=config, task_function=self.task_function)
        return SweepJob(num, overrides, cfg, ctx, float(cfg.sweep.failed_objective))

    def job_config(self, overrides: list[str], num: int) -> tuple[DictConfig, Path]:
        """The job's config (through the sweeper's loader) with its number and output folder,
        HydraConfig made the job's; and that folder."""
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config):
            config.hydra.job.id = num
            config.hydra.job.num = num
        output_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = str(output_dir.absolute())
        self._set_hydra_config(config)
        return config, output_dir

    def _set_hydra_config(self, config: DictConfig) -> None:
        """Make HydraConfig the job's, as Hydra's ``run_job`` does. Hydra copies the whole hydra
        node per job (~7 ms); a job of the same shape as the one before (nnexp's sweeper says
        which) differs from it there only in its number, overrides and output folder, so those
        are set in place and the node is re-parented onto the job's config."""
        shape = getattr(self.hydra_context.config_loader, "last_shape", None)
        instance = HydraConfig.instance()
        if shape is None or shape != self._hydra_shape or instance.cfg is None:
            instance.set_config(config)
            self._hydra_shape = shape
            return
        OmegaConf.set_readonly(config.hydra, True)
        node = instance.cfg.hydra
        job = OmegaConf.to_container(config.hydra.job, resolve=False)  # overrides stay as typed
        with read_write(node), open_dict(node):
            for key in ("id", "num", "override_dirname"):
                node.job[key] = job[key]
            node.overrides.task = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
            node.runtime.output_dir = config.hydra.runtime.output_dir
        node._set_parent(config)

    @staticmethod
    def _return(item) -> JobReturn:
        """The job's JobReturn: its objective (the failed objective for a failed job)."""
        return JobReturn(
            overrides=item.overrides,
            cfg=item.cfg,
            status=JobStatus.COMPLETED,
            _return_value=item.objective,
        )

    def _end(self, item) -> None:
        """Hydra's on_job_end for an ended job."""
        self.hydra_context.callbacks.on_job_end(config=self.config, job_return=self._return(item))
