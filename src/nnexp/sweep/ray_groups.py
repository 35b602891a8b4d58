"""``hydra/launcher=ray``: hydra-ray-launcher's launcher, with ``batch=true`` (the default) a
group of same-shape jobs (``nnexp.sweep.cluster``) as one Ray task, trained as one batched
computation on a worker; a task Ray loses (its worker or node died, cancelled) makes its jobs
FAILED (KILLED if cancelled) jobs of the sweep with Ray's reason, and a stop signal to the
launching process cancels the tasks. ``batch=false`` runs each job as its own Ray task as the
plugin does."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_ray_launcher import ray_launcher
from omegaconf import DictConfig, OmegaConf

from nnexp.errors import first_line
from nnexp.signals import Terminated
from nnexp.sweep.launching import ComposingLauncher

log = logging.getLogger(__name__)


def ray_task(task: list) -> list:
    """On a Ray worker: one task of a batched sweep (``nnexp.sweep.cluster.run_task``), each
    job's initial weights copied first: Ray hands numpy arrays over read-only, and the group's
    training writes its final weights into them."""
    from nnexp.sweep.cluster import run_task

    for item in task:
        item.job.W1, item.job.W2 = item.job.W1.copy(), item.job.W2.copy()
    return run_task(task)


class RayLauncher(ComposingLauncher, ray_launcher.RayLauncher):
    """``hydra/launcher=ray`` with ``batch`` and ``configs_per_task`` beside the plugin's ``ray``
    settings (``ray.init`` for ``ray.init``, ``ray.remote`` for each task's options)."""

    def __init__(self, ray: DictConfig, batch: bool = True, configs_per_task: int = 500) -> None:
        super().__init__(ray)
        self.batch, self.configs_per_task = batch, configs_per_task

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """The sweep's groups as Ray tasks (``batch=false``: a task per job, as the plugin)."""
        if not self.batch:
            return super().launch(job_overrides, initial_job_idx)
        import ray

        from nnexp.sweep import cluster
        from nnexp.sweep.batch import Trackers, draw_curves

        cluster.check_configs_per_task(self.configs_per_task, "Ray")
        trackers = Trackers()
        items = self.checked_jobs(job_overrides, initial_job_idx, trackers)
        ready = [item for item in items if item.objective is None]
        options = OmegaConf.to_container(self.ray_cfg.remote, resolve=True) or {}
        tasks = cluster.plan_tasks(ready, self.configs_per_task, options.get("memory"))
        if tasks:
            log.info(
                f"Submitting {len(ready)} jobs as {len(tasks)} Ray tasks "
                f"(same shapes batched, at most {self.configs_per_task} a task)"
            )
            if not ray.is_initialized():
                ray.init(**(OmegaConf.to_container(self.ray_cfg.init, resolve=True) or {}))
            remote = ray.remote(**options)(ray_task) if options else ray.remote(ray_task)
            refs = [remote.remote(task) for task in tasks]
            try:
                for ref, task in zip(refs, tasks, strict=True):
                    collect(ref, task, self.end)
            except (KeyboardInterrupt, Terminated):
                for ref in refs:
                    ray.cancel(ref)
                raise
        draw_curves(items, trackers)
        return [self.job_return(item) for item in items]


def collect(ref: Any, task: list, on_end: Any) -> None:
    """A task's results into its jobs, or, for a task Ray lost, its jobs recorded lost."""
    import ray
    from ray.exceptions import RayError, TaskCancelledError

    from nnexp.sweep import cluster

    try:
        results = ray.get(ref)
    except RayError as err:
        status = "KILLED" if isinstance(err, TaskCancelledError) else "FAILED"
        reason = f"Ray task {ref.task_id().hex()} lost: {type(err).__name__}: {first_line(err)}"
        cluster.record_lost(task, status, reason, on_end)
        return
    cluster.take_results(task, results, on_end)
