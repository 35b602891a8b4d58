"""A sweep's jobs run in one process, same-shape jobs trained together (``nnexp.groups``): each
job is checked (a rejected one fails alone, with its FAILED child), skipped on resume if its
config already has a FINISHED run, grouped, and after its group trained written as its own child
run with its files. A signal mid-group ends the group's children KILLED with their points."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from nnexp import console
from nnexp.callbacks import write_failure
from nnexp.errors import UserError
from nnexp.groups import Points, Slice, group_jobs, slices, split_to_fit, train_group
from nnexp.job import Job, JobContext, run_name
from nnexp.outputs import write_outputs
from nnexp.progress import record_job_end
from nnexp.signals import Terminated, raise_pending
from nnexp.train import checked, diverged_error, job_tags, open_tracker
from nnexp.vocabulary import STATUS_TAG, cost_metrics


@dataclass
class SweepJob:
    """One job of the sweep: its number, overrides, config and context; once checked its Job,
    once ended its objective for the sweeper."""

    num: int
    overrides: list[str]
    cfg: DictConfig
    ctx: JobContext
    failed_objective: float
    job: Job | None = None
    objective: float | None = None


class Trackers:
    """One tracker for all the tracked jobs of the sweep (one store check, one client), and the
    child writer on it."""

    def __init__(self) -> None:
        self._tracker = None
        self._writer = None

    def of(self, item: SweepJob):
        """The job's tracker: the sweep's, or for an untracked job one that does nothing."""
        if not item.cfg.tracking.enabled:
            return open_tracker(item.cfg, item.ctx)
        if self._tracker is None:
            self._tracker = open_tracker(item.cfg, item.ctx)
        return self._tracker

    def writer(self, item: SweepJob):
        """The child writer of a tracked job's sweep, None for an untracked job or a job outside a
        tracked sweep."""
        tracker = self.of(item)
        if not item.cfg.tracking.enabled or getattr(tracker, "sweep", None) is None:
            return None
        if self._writer is None:
            from nnexp.tracking.children import ChildWriter

            self._writer = ChildWriter(tracker)
        return self._writer


def run_jobs(
    items: Iterable[SweepJob], on_end: Callable[[SweepJob], None] | None = None
) -> list[SweepJob]:
    """Run the sweep's jobs: check each as it comes (while Hydra's config is the job's), group
    the rest, train each group (split to fit in memory) and record its jobs; each job's
    ``objective`` is set when it ends. Returns the jobs in order."""
    trackers = Trackers()
    items = list(check_all(items, trackers, on_end))
    ready = [item for item in items if item.objective is None]
    jobs = [item.job for item in ready]
    for members in group_jobs(jobs):
        for chunk in split_to_fit(jobs, members):
            run_group([ready[index] for index in chunk], trackers, on_end)
    return items


def check_all(
    items: Iterable[SweepJob], trackers: Trackers, on_end: Callable[[SweepJob], None] | None
) -> Iterable[SweepJob]:
    """Each job checked (and, resuming, looked up) as it comes; ``on_end`` for those it ends."""
    for item in items:
        start(item, trackers)
        if item.objective is not None and on_end is not None:
            on_end(item)
        yield item


def start(item: SweepJob, trackers: Trackers) -> None:
    """Check the job (a rejected one ends failed) and, resuming, skip it if done."""
    try:
        item.job = checked(item.cfg, item.ctx)
        if not item.cfg.sweep.resume:
            return
        tracker = trackers.of(item)
        done = tracker.finished(item.job.config_hash(tracker.code_version))
    except UserError as err:
        fail(item, str(err))
        return
    except Exception as err:
        traceback.print_exc()
        fail(item, f"{type(err).__name__}: {err}")
        return
    if done is not None:
        console.info(
            f"skipped {' '.join(item.overrides)}: run {done.run_id} already FINISHED with this "
            "config"
        )
        record_job_end(item.ctx.sweep_dir, item.num, item.overrides, "finished", done.objective)
        item.objective = done.objective


def fail(item: SweepJob, reason: str) -> None:
    """A failed job: one line, the failure marker in its folder, its end in the progress file."""
    console.error(f"job {item.num} ({' '.join(item.overrides)}) failed: {reason}")
    write_failure(item.ctx.output_dir, item.overrides, reason)
    record_job_end(item.ctx.sweep_dir, item.num, item.overrides, "failed", float("nan"))
    item.objective = item.failed_objective


def run_group(
    group: Sequence[SweepJob], trackers: Trackers, on_end: Callable[[SweepJob], None] | None
) -> None:
    """Train the group as one batched computation, then record each of its jobs."""
    jobs = [item.job for item in group]
    points = Points()
    try:
        diverged_at = train_group(jobs, points, on_record=lambda epoch: raise_pending())
    except (KeyboardInterrupt, Terminated) as err:
        ended = ("KILLED", "killed", str(err) or "interrupted (Ctrl-C)")
        for item, part in zip(group, slices(jobs, points), strict=True):
            record(item, part, trackers, ended)
        raise
    except Exception as err:
        traceback.print_exc()
        ended = ("FAILED", "failed", f"{type(err).__name__}: {err}")
        for item, part in zip(group, slices(jobs, points), strict=True):
            record(item, part, trackers, ended)
        return
    for item, part in zip(group, slices(jobs, points, diverged_at), strict=True):
        record(item, part, trackers)
        if on_end is not None:
            on_end(item)


def record(
    item: SweepJob, part: Slice, trackers: Trackers, ended: tuple[str, str, str] | None = None
) -> None:
    """Write the job's files and child run: FINISHED, FAILED (diverged, or its files could not be
    written), or as ``ended`` (status, label, reason) says when its group stopped early."""
    job, ctx = item.job, item.ctx
    status, label, reason, files = "FINISHED", "finished", None, {}
    if ended is not None:
        status, label, reason = ended
    elif (error := diverged_error(job, part.diverged_at)) is not None:
        status, label, reason = "FAILED", "diverged", str(error)
    else:
        try:
            files = write_outputs(job.cfg, job.dataset, part.result, job.seeds, ctx.output_dir)
        except UserError as err:
            status, label, reason = "FAILED", "failed", str(err)
    try:
        write_child(item, part, trackers, status, label, reason, list(files.values()))
    except UserError as err:
        status, reason = "FAILED", str(err)
    if status == "KILLED":
        return
    if status != "FINISHED":
        fail(item, reason or status)
        return
    item.objective = float(np.mean(part.history.test_cost[-1]))
    record_job_end(ctx.sweep_dir, item.num, item.overrides, "finished", item.objective)


def write_child(
    item: SweepJob,
    part: Slice,
    trackers: Trackers,
    status: str,
    label: str,
    reason: str | None,
    files: list[Path],
) -> None:
    """The job's child run with its params, tags, every curve point and its files."""
    writer = trackers.writer(item)
    if writer is None:
        return
    tracker = trackers.of(item)
    job = item.job
    name = run_name(item.cfg, item.ctx.overrides, tracker.axes)
    tags = {**job_tags(job, item.ctx, tracker.code_version, None), STATUS_TAG: label}
    history = part.history
    points = [
        (epoch, cost_metrics(train, test, job.seeds))
        for epoch, train, test in zip(
            history.epochs, history.train_cost, history.test_cost, strict=True
        )
    ]
    writer.write(name, job.params(), tags, points, job.dataset, files, status, reason)
