"""What nnexp's launchers share in the launching process (``hydra/launcher=nnexp``, ``slurm``,
``ray``): each job composed through the sweeper's loader with its number and output folder, its
``.hydra/config.yaml`` and ``overrides.yaml`` written, Hydra's on_job_start and on_job_end
called, and its JobReturn carrying its objective (the failed objective for a failed job)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from nnexp import private_api

if TYPE_CHECKING:  # Hydra imports every launcher plugin at start: nnexp.sweep.batch only once used
    from nnexp.sweep.batch import SweepJob, Trackers

log = logging.getLogger(__name__)


def save_yaml(node: object, path: Path) -> None:
    """What Hydra writes into a job's ``.hydra/`` folder: the node as YAML, unresolved."""
    path.write_text(OmegaConf.to_yaml(node), encoding="utf-8")


class ComposingLauncher:
    """The launching process's side of nnexp's launchers; ``setup`` keeps Hydra's context."""

    config: DictConfig | None = None
    hydra_context: HydraContext | None = None
    task_function: TaskFunction | None = None
    #: The shape whose hydra node HydraConfig holds (see ``_set_hydra_config``).
    _hydra_shape: tuple[str, ...] | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Keep what ``launch`` needs."""
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def checked_jobs(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, trackers: Trackers
    ) -> list[SweepJob]:
        """Every job composed and checked (a rejected one ended failed; resuming, a finished one
        skipped with its objective), Hydra's config restored after."""
        from nnexp.sweep.batch import check_all

        assert self.config is not None
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        previous = HydraConfig.instance().cfg
        try:
            jobs = self.composed(job_overrides, initial_job_idx)
            return list(check_all(jobs, trackers, self.end))
        finally:
            HydraConfig.instance().cfg = previous

    def composed(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Iterator[SweepJob]:
        """The jobs one by one as they are composed (Hydra's config set to each in turn)."""
        self._hydra_shape = None
        for index, overrides in enumerate(job_overrides):
            yield self.compose(list(overrides), initial_job_idx + index)

    def compose(self, overrides: list[str], num: int) -> SweepJob:
        """Compose the job, set its number and output folder, write its ``.hydra/`` files."""
        from nnexp.sweep.batch import SweepJob
        from nnexp.sweep.jobs import sweep_job

        assert self.config is not None and self.hydra_context is not None
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
        """The job's config (through the sweeper's loader) with its number and output folder
        (absolute, as Hydra's ``run_job`` makes it), HydraConfig made the job's; and that folder."""
        assert self.config is not None and self.hydra_context is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config):
            config.hydra.job.id = num
            config.hydra.job.num = num
        output_dir = (Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)).absolute()
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = str(output_dir)
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
        private_api.set_parent(node, config)

    @staticmethod
    def job_return(item: SweepJob) -> JobReturn:
        """The job's JobReturn: its objective (the failed objective for a failed job)."""
        return JobReturn(
            overrides=item.overrides,
            cfg=item.cfg,
            status=JobStatus.COMPLETED,
            _return_value=item.objective,
        )

    def end(self, item: SweepJob) -> None:
        """Hydra's on_job_end for an ended job."""
        assert self.hydra_context is not None
        callbacks = self.hydra_context.callbacks
        callbacks.on_job_end(config=self.config, job_return=self.job_return(item))
