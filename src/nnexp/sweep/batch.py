"""A sweep's jobs run in one process, same-shape jobs trained together (``nnexp.sweep.groups``):
each job is checked (a rejected one fails alone, with its FAILED child), skipped on resume if
its config already has a FINISHED run, grouped, and after its group trained written as its own
child run with its files. A signal mid-group ends the group's children KILLED with their points."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from nnexp import console
from nnexp.errors import UserError
from nnexp.run.job import Job, JobContext, run_name
from nnexp.run.outputs import write_outputs
from nnexp.run.recipe import checked, diverged_error, job_tags, open_tracker
from nnexp.signals import Terminated, raise_pending, signals_deferred
from nnexp.sweep.groups import Points, Slice, slices, train_group
from nnexp.sweep.lifecycle import write_failure
from nnexp.sweep.progress import record_job_end
from nnexp.tracking import sweep_file as sweep_folder
from nnexp.tracking.vocabulary import ERROR_TAG, STATUS_TAG, metric_values

#: Once its children are open, a group sends their points this often (seconds), or sooner once
#: MAX_POINTS wait per child: as ``tracking.run`` does for a single run (not imported here: it
#: imports mlflow).
FLUSH_SECONDS = 2.0
MAX_POINTS = 1000
#: A group of more children than this never streams: it is written once, after training (in
#: bulk where the store allows), however long it trains. Streaming costs a store call per child
#: every FLUSH_SECONDS, which for thousands of children costs more than their training.
MAX_LIVE_CHILDREN = 100


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
    #: Once finished: (epochs, test cost mean over its seeds) for the sweep's figure.
    curve: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class Outcome:
    """How a job of a group ended: run status, ``nnexp.status`` label and reason, the files to
    upload and its summary point (best values at the last epoch, as its run alone logs them)."""

    status: str
    label: str
    reason: str | None
    files: list[Path] = field(default_factory=list)
    summary: tuple[int, dict[str, float]] | None = None


class Trackers:
    """One tracker for all the tracked jobs of the sweep (one store check, one client), and the
    child writer on it."""

    def __init__(self) -> None:
        self._tracker = None
        self._writer = None

    def of(self, item: SweepJob):
        """The job's tracker: the sweep's, or for an untracked job one that does nothing."""
        if not item.cfg.tracking.enabled:
            return open_tracker(item.cfg.tracking, item.ctx)
        if self._tracker is None:
            self._tracker = open_tracker(item.cfg.tracking, item.ctx)
        return self._tracker

    def writer(self, item: SweepJob):
        """The child writer of a tracked job's sweep, None for an untracked job or a job outside a
        tracked sweep."""
        tracker = self.of(item)
        if not item.cfg.tracking.enabled or getattr(tracker, "sweep", None) is None:
            return None
        if self._writer is None:
            from nnexp.sweep.children import ChildWriter

            self._writer = ChildWriter(tracker)
        return self._writer


def draw_curves(items: Sequence[SweepJob], trackers: Trackers) -> None:
    """The finished jobs' test costs in one figure in the sweep folder, logged on the parent run
    (instead of one cost_curve.png per child): ``cost_curves_FIRST-LAST.png`` for jobs FIRST …
    LAST of this launch."""
    done = [item for item in items if item.curve is not None]
    if not done:
        return
    from nnexp import plots  # matplotlib takes ~1 s to import: only a sweep that draws pays it

    first, last = items[0].num, items[-1].num
    path = done[0].ctx.sweep_dir / f"cost_curves_{first}-{last}.png"
    title = f"test cost of jobs {first}–{last} ({len(done)} finished)"
    plots.cost_curves([item.curve for item in done], title, path)
    writer = trackers.writer(done[0])
    if writer is None:
        return
    try:
        writer.log_on_parent(path)
    except UserError as err:  # the jobs are recorded; the figure stays in the sweep folder
        console.warning(f"{err}; the figure stays at {path}")


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
        name = run_name(item.cfg, item.ctx.overrides, tracker.axes)
        console.info(f"skipped {name}: run {done.run_id} already FINISHED with this config")
        record_job_end(item.ctx.sweep_dir, item.num, item.overrides, "finished", done.objective)
        item.objective = done.objective


def fail(item: SweepJob, reason: str) -> None:
    """A failed job: one line, the failure marker in its folder, its end in the progress file."""
    console.error(f"job {item.num} ({' '.join(item.overrides)}) failed: {reason}")
    write_failure(item.ctx.output_dir, item.overrides, reason)
    record_job_end(item.ctx.sweep_dir, item.num, item.overrides, "failed", float("nan"))
    item.objective = item.failed_objective


class GroupLog:
    """The child runs of one group. A group of at most MAX_LIVE_CHILDREN jobs that trains longer
    than ``tracking.live_after`` seconds opens its children RUNNING and from then on streams
    their points every FLUSH_SECONDS or MAX_POINTS (so a long sweep shows its progress, and a
    killed process leaves runs that `nnexp runs repair` ends); any other group writes each child
    once, after training: all in bulk in an SQL store (``bulk``), else at MLflow's floor."""

    def __init__(self, group: Sequence[SweepJob], trackers: Trackers, points: Points):
        self.group, self.trackers, self.points = group, trackers, points
        self.children: list = [None] * len(group)
        self.sent = 0
        self.live = False
        self.last = time.monotonic()
        #: When the group began training (ms since the epoch): its children's start time.
        self.started = int(time.time() * 1000)
        self.live_after = float(group[0].job.config.tracking.live_after)
        self.offsets = np.cumsum([0, *(len(item.job.rngs) for item in group)])

    def due(self) -> bool:
        """Whether the points are to be sent now: past live_after, then every FLUSH_SECONDS or
        once MAX_POINTS wait per child."""
        elapsed = time.monotonic() - self.last
        if not self.live:
            return elapsed >= self.live_after and len(self.group) <= MAX_LIVE_CHILDREN
        waiting = (len(self.points.epochs) - self.sent) * len(self.points.values)
        return elapsed > FLUSH_SECONDS or waiting >= MAX_POINTS

    def on_record(self, epoch: int) -> None:
        """After each recorded epoch: a pending signal raised; points sent if it is time."""
        raise_pending()
        if self.due():
            self.live = True
            with signals_deferred():  # a signal waits until the points sent are counted
                for index in range(len(self.group)):
                    child = self.child(index)
                    if child is not None:
                        self.writer(index).send(child, self.new_points(index))
                self.sent = len(self.points.epochs)
            self.last = time.monotonic()

    def writer(self, index: int):
        """The child writer of the job's sweep (None untracked)."""
        return self.trackers.writer(self.group[index])

    def child(self, index: int):
        """The job's child run, opened now if it is not yet."""
        writer = self.writer(index)
        if writer is None or self.children[index] is not None:
            return self.children[index]
        item = self.group[index]
        tracker = self.trackers.of(item)
        name = run_name(item.cfg, item.ctx.overrides, tracker.axes)
        tags = job_tags(item.job, item.ctx, tracker.code_version, None)
        self.children[index] = writer.open(name, item.job.params(), tags, item.job.dataset)
        return self.children[index]

    def new_points(self, index: int) -> list[tuple[int, dict[str, float]]]:
        """The job's recorded metrics not yet sent, as its run alone logs them."""
        begin, end = self.offsets[index], self.offsets[index + 1]
        seeds = self.group[index].job.seeds
        points = self.points
        return [
            (
                points.epochs[r],
                metric_values(
                    {name: rows[r][begin:end] for name, rows in points.values.items()}, seeds
                ),
            )
            for r in range(self.sent, len(points.epochs))
        ]

    @property
    def bulk(self) -> bool:
        """Whether the group's children are written in one transaction: tracked, an SQL store,
        and none opened yet (the group ended before ``tracking.live_after``)."""
        writer = self.writer(0)
        return not self.live and writer is not None and writer.bulk

    def end_tags(self, end: Outcome) -> dict[str, str]:
        """The status tag and, for a job that did not finish, its reason."""
        return {STATUS_TAG: end.label} | ({ERROR_TAG: end.reason[:5000]} if end.reason else {})

    def end(self, index: int, end: Outcome) -> None:
        """Send the job's last points (and its summary) with its status (and reason), upload its
        files, end it."""
        writer = self.writer(index)
        if writer is None:
            return
        child = self.child(index)
        points = self.new_points(index) + ([end.summary] if end.summary is not None else [])
        try:
            writer.send(child, points, self.end_tags(end))
            writer.end(child, end.files, end.status)
        except UserError as err:
            writer.abandon(child, str(err))
            raise

    def end_all(self, ends: Sequence[Outcome]) -> None:
        """Write all the group's children whole, in one transaction (only when ``bulk``)."""
        from nnexp.sweep.children import Ended

        children = []
        for index, end in enumerate(ends):
            item = self.group[index]
            tracker = self.trackers.of(item)
            summary = [end.summary] if end.summary is not None else []
            children.append(
                Ended(
                    name=run_name(item.cfg, item.ctx.overrides, tracker.axes),
                    params=item.job.params(),
                    tags=job_tags(item.job, item.ctx, tracker.code_version, None),
                    dataset=item.job.dataset,
                    points=self.new_points(index) + summary,
                    end_tags=self.end_tags(end),
                    files=end.files,
                    status=end.status,
                    start_time=self.started + index,  # 1 ms apart: MLflow lists them in job order
                )
            )
        self.writer(0).write_all(children)


def run_group(
    group: Sequence[SweepJob], trackers: Trackers, on_end: Callable[[SweepJob], None] | None
) -> None:
    """Train the group as one batched computation, then record each of its jobs; none starts
    once the sweep is stopping (whichever process runs the group)."""
    sweep_folder.refuse_after_stop(group[0].ctx.sweep_dir)
    jobs = [item.job for item in group]
    points = Points()
    log = GroupLog(group, trackers, points)
    try:
        diverged_at = train_group(jobs, points, on_record=log.on_record)
    except (KeyboardInterrupt, Terminated) as err:
        if log.bulk:
            record_all(log, slices(jobs, points), None, killed(err))
        else:
            stop(log, slices(jobs, points), 0, err)
        raise
    except Exception as err:
        if not isinstance(err, UserError):  # a store that failed is its one line; else a bug
            traceback.print_exc()
        reason = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
        for index, part in enumerate(slices(jobs, points)):
            record(log, index, part, ("FAILED", "failed", reason))
        return
    parts = slices(jobs, points, diverged_at)
    if log.bulk:
        record_all(log, parts, on_end)
        return
    for index, part in enumerate(parts):
        try:
            with signals_deferred():  # a signal while a job is written ends the jobs after it
                record(log, index, part)
        except (KeyboardInterrupt, Terminated) as err:
            stop(log, parts, index + 1, err)
            raise
        if on_end is not None:
            on_end(group[index])


def stop(log: GroupLog, parts: Sequence[Slice], first: int, err: BaseException) -> None:
    """The group's jobs from ``first`` on end KILLED with their points (a second signal waits)."""
    with signals_deferred():
        for index in range(first, len(parts)):
            record(log, index, parts[index], killed(err))


def killed(err: BaseException) -> tuple[str, str, str]:
    """The end of a job a signal stopped: KILLED, with the signal as its reason."""
    return ("KILLED", "killed", str(err) or "interrupted (Ctrl-C)")


def outcome(
    log: GroupLog, index: int, part: Slice, ended: tuple[str, str, str] | None = None
) -> Outcome:
    """The job's end, its files written: FINISHED, FAILED (diverged, or its files could not be
    written), or as ``ended`` (status, label, reason) says when its group stopped early."""
    job, ctx = log.group[index].job, log.group[index].ctx
    if ended is not None:
        return Outcome(*ended)
    summary = (part.history.epochs[-1], metric_values(part.history.summaries(), job.seeds))
    if (error := diverged_error(job, part.diverged_at)) is not None:
        return Outcome("FAILED", "diverged", str(error), summary=summary)
    try:
        files = write_outputs(job, part.result, ctx.output_dir, figure=False)
    except UserError as err:
        return Outcome("FAILED", "failed", str(err), summary=summary)
    return Outcome("FINISHED", "finished", None, list(files.values()), summary)


def record(
    log: GroupLog, index: int, part: Slice, ended: tuple[str, str, str] | None = None
) -> None:
    """Write the job's files and child run (``outcome``), one child at a time."""
    end = outcome(log, index, part, ended)
    try:
        log.end(index, end)
    except UserError as err:
        end.status, end.reason = "FAILED", str(err)
    conclude(log.group[index], part, end)


def record_all(
    log: GroupLog,
    parts: Sequence[Slice],
    on_end: Callable[[SweepJob], None] | None,
    ended: tuple[str, str, str] | None = None,
) -> None:
    """Write every job's files and all the group's children in one transaction (``log.bulk``);
    a signal meanwhile waits until they are written and concluded. If the store fails, every
    job fails."""
    with signals_deferred():
        ends = [outcome(log, index, part, ended) for index, part in enumerate(parts)]
        try:
            log.end_all(ends)
        except UserError as err:
            for end in ends:
                if end.status != "KILLED":
                    end.status, end.reason = "FAILED", str(err)
        for item, part, end in zip(log.group, parts, ends, strict=True):
            conclude(item, part, end)
            if on_end is not None and ended is None:
                on_end(item)


def conclude(item: SweepJob, part: Slice, end: Outcome) -> None:
    """The job's end in the sweep: failed (one line), or finished with its objective and
    curve; a killed job is left to the sweep's stop."""
    if end.status == "KILLED":
        return
    if end.status != "FINISHED":
        fail(item, end.reason or end.status)
        return
    item.objective = float(np.mean(part.history.test_cost[-1]))
    epochs, _, test_cost = part.history.as_arrays()
    item.curve = (epochs, test_cost.mean(axis=1))
    record_job_end(item.ctx.sweep_dir, item.num, item.overrides, "finished", item.objective)
