"""A sweep's groups as cluster tasks (SLURM, Ray): the launching process checks and groups the
jobs as ``hydra/launcher=nnexp`` does, cuts each group into tasks of at most
``configs_per_task`` configs whose arrays fit in the task's memory, and a task trains its part
of a group as one batched computation on the node and writes its children; a task the cluster
loses ends each of its configs as a lost job (FAILED, or KILLED when cancelled)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from nnexp import console
from nnexp.errors import UserError
from nnexp.run.job import JobContext, flat_config, run_name
from nnexp.sweep.batch import SweepJob, Trackers, run_group
from nnexp.sweep.groups import group_jobs, split_to_fit
from nnexp.sweep.lifecycle import write_failure
from nnexp.sweep.progress import record_job_end
from nnexp.tracking.vocabulary import CONFIG_HASH_TAG, OUTPUT_DIR_TAG

#: What one task returns per config: its objective and its curve for the sweep's figure.
TaskResult = list[tuple[float | None, Any]]


def plan_tasks(
    ready: Sequence[SweepJob], configs_per_task: int, memory_bytes: int | None
) -> list[list[SweepJob]]:
    """The checked jobs grouped (``sweep.groups``), each group cut so that a task holds at most
    ``configs_per_task`` configs whose batched arrays fit in half of ``memory_bytes`` (the
    task's memory; None: this machine's free memory). Jobs of one task share one dataset
    object, so it is sent to the node once, and their folders are absolute, so the node need
    not start in the launch folder."""
    jobs = [item.job for item in ready]
    tasks = []
    for members in group_jobs(jobs):
        for fitted in split_to_fit(jobs, members, memory_bytes):
            for start in range(0, len(fitted), configs_per_task):
                task = [ready[index] for index in fitted[start : start + configs_per_task]]
                for item in task:
                    item.job.dataset = task[0].job.dataset
                    item.ctx = absolute(item.ctx)
                tasks.append(task)
    return tasks


def absolute(ctx: JobContext) -> JobContext:
    """The job's context with its output and sweep folders as absolute paths."""
    sweep_dir = ctx.launch_dir / ctx.sweep_dir if ctx.sweep_dir is not None else None
    return replace(ctx, output_dir=ctx.launch_dir / ctx.output_dir, sweep_dir=sweep_dir)


def run_task(task: list[SweepJob]) -> TaskResult:
    """On the node: train the task's jobs as one batched computation and write their children
    and files (a stop signal ends them KILLED with their points); each job's objective and
    curve."""
    from nnexp.signals import signals_raise

    with signals_raise():
        run_group(task, Trackers(), None)
    return [(item.objective, item.curve) for item in task]


def take_results(
    task: Sequence[SweepJob], results: TaskResult, on_end: Callable[[SweepJob], None] | None
) -> None:
    """A finished task's results into the launching process's jobs."""
    for item, (objective, curve) in zip(task, results, strict=True):
        item.objective, item.curve = objective, curve
        if on_end is not None:
            on_end(item)


def record_lost(
    task: Sequence[SweepJob],
    status: str,
    reason: str,
    on_end: Callable[[SweepJob], None] | None,
) -> None:
    """Every config of a task the cluster lost, as the per-job launcher records a lost job: one
    ``job N (…) lost: REASON`` line, its failure marker and progress line, and its child ended
    ``status`` (FAILED, or KILLED when cancelled) with the reason (the child the task opened,
    else a new one), so that ``sweep.resume=true`` runs it again."""
    trackers = Trackers()
    for item in task:
        console.error(f"job {item.num} ({' '.join(item.overrides)}) lost: {reason}")
        write_failure(item.ctx.output_dir, item.overrides, reason)
        record_job_end(item.ctx.sweep_dir, item.num, item.overrides, "failed", float("nan"))
        item.objective = item.failed_objective
        if item.cfg.tracking.enabled:
            tracker = trackers.of(item)
            tracker.record_lost(
                run_name(item.cfg, item.ctx.overrides, tracker.axes),
                flat_config(item.cfg),
                {
                    CONFIG_HASH_TAG: item.job.config_hash(tracker.code_version),
                    OUTPUT_DIR_TAG: str(item.ctx.output_dir),
                },
                item.num,
                status,
                reason,
            )
        if on_end is not None:
            on_end(item)


def check_configs_per_task(configs_per_task: int, cluster: str) -> None:
    """Refuse a ``hydra.launcher.configs_per_task`` below 1, in one line."""
    if configs_per_task < 1:
        raise UserError(
            f"hydra.launcher.configs_per_task={configs_per_task}: give the most configs one "
            f"{cluster} task trains, >= 1"
        )
