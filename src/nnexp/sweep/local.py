"""The nnexp launcher's jobs on this machine: checked, grouped and trained in the launching
process, or with ``hydra.launcher.n_jobs=N`` the groups (large ones split) spread over N
long-lived worker processes. Each worker is spawned once, imports nnexp and MLflow once,
limits BLAS to its share of the cores, and writes the children of the groups it trains into the
store itself; the launching process gets back each job's objective and curve."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from nnexp.signals import Terminated, signals_raise
from nnexp.sweep.batch import SweepJob, Trackers, check_all, draw_curves, fail, run_group
from nnexp.sweep.groups import group_jobs, split_to_fit


def run_jobs(
    items: Iterable[SweepJob],
    on_end: Callable[[SweepJob], None] | None = None,
    workers: int = 1,
) -> list[SweepJob]:
    """Run the sweep's jobs: check each as it comes (while Hydra's config is the job's), group
    the rest, train each group (split to fit in memory) and record its jobs, here or spread over
    ``workers`` processes; each job's ``objective`` is set when it ends. Returns the jobs."""
    trackers = Trackers()
    items = list(check_all(items, trackers, on_end))
    ready = [item for item in items if item.objective is None]
    jobs = [item.job for item in ready]
    chunks = [
        [ready[index] for index in chunk]
        for members in group_jobs(jobs)
        for chunk in split_to_fit(jobs, members)
    ]
    if workers > 1 and len(ready) > 1:
        run_parallel(chunks, workers, on_end)
    else:
        for chunk in chunks:
            run_group(chunk, trackers, on_end)
    draw_curves(items, trackers)
    return items


#: Held for the worker's life: its BLAS limit and its signal handlers.
_WORKER: dict[str, Any] = {}


def start_worker(threads: int) -> None:
    """In each worker: BLAS limited to ``threads``; SIGINT and SIGTERM raise, as in the launching
    process, so a stopped group ends its children KILLED."""
    from threadpoolctl import threadpool_limits

    raising = signals_raise()
    raising.__enter__()
    _WORKER.update(limits=threadpool_limits(threads), signals=raising, trackers=Trackers())


def run_chunk(chunk: list[SweepJob]) -> list[tuple[float | None, Any]]:
    """In a worker: train one group (or part of one) and write its children; each job's
    objective and curve."""
    run_group(chunk, _WORKER["trackers"], None)
    return [(item.objective, item.curve) for item in chunk]


def spread(chunks: list[list[SweepJob]], workers: int) -> list[list[SweepJob]]:
    """The chunks, the largest halved until there are at least ``workers`` (where possible)."""
    chunks = [list(chunk) for chunk in chunks]
    while len(chunks) < workers:
        largest = max(chunks, key=len)
        if len(largest) < 2:
            break
        chunks.remove(largest)
        half = len(largest) // 2
        chunks += [largest[:half], largest[half:]]
    return chunks


def run_parallel(
    chunks: list[list[SweepJob]], workers: int, on_end: Callable[[SweepJob], None] | None
) -> None:
    """Train the chunks on ``workers`` spawned processes; on Ctrl-C or SIGTERM the workers get the
    same signal (their running groups end KILLED) before the exception goes on."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=start_worker, initargs=(threads,)
    ) as pool:
        try:
            futures = {pool.submit(run_chunk, chunk): chunk for chunk in spread(chunks, workers)}
            for future in as_completed(futures):
                collect(futures[future], future, on_end)
        except (KeyboardInterrupt, Terminated) as err:
            signum = signal.SIGINT if isinstance(err, KeyboardInterrupt) else signal.SIGTERM
            for child in multiprocessing.active_children():
                os.kill(child.pid, signum)
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def collect(chunk: Sequence[SweepJob], future, on_end: Callable[[SweepJob], None] | None) -> None:
    """Take a worker's results into the launching process's jobs (failed if the worker broke)."""
    try:
        results = future.result()
    except Exception as err:
        for item in chunk:
            fail(item, f"its worker process failed: {type(err).__name__}: {err}")
        return
    for item, (objective, curve) in zip(chunk, results, strict=True):
        item.objective, item.curve = objective, curve
        if on_end is not None:
            on_end(item)
