"""Running a pass's stripes on one thread per core, the BLAS single-threaded meanwhile.

numpy releases the GIL inside ufunc loops and matrix products, so threads working on separate
stripes run in parallel: the elementwise work, which numpy does on one core, is shared out, and
each core's block stays in its own cache. The BLAS is held to one thread while they run: its own
threads would compete with ours, and on a loaded machine its spin-waiting hand-offs, one per
small product, cost more than the products.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController

T = TypeVar("T")
B = TypeVar("B")


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class _Workers:
    """The process's worker threads and its handle on the BLAS thread count."""

    pid: int
    pool: ThreadPoolExecutor
    blas: ThreadpoolController


@functools.lru_cache(maxsize=1)
def _workers_of(pid: int) -> _Workers:
    """The workers of process ``pid``: made on first use, and anew in a forked child, whose pid
    differs (threads do not survive a fork)."""
    return _Workers(pid, ThreadPoolExecutor(usable_cpus(), "nnexp-core"), ThreadpoolController())


def single_threaded_blas(stripes: int) -> AbstractContextManager:
    """A context that holds the BLAS to one thread while a pass of ``stripes`` > 1 runs on our
    threads, and restores it after (else nothing). Everything a pass does with the BLAS belongs
    inside it: a multi-threaded call in between leaves the BLAS's threads spinning, in the way
    of ours. It depends on the stripes, not on how many CPUs run them, so the BLAS's thread
    count inside a pass (which can change its rounding) is the same on any machine."""
    if stripes == 1:
        return nullcontext()
    return _workers_of(os.getpid()).blas.limit(limits=1, user_api="blas")


def map_tasks(task: Callable[[int, B], T], count: int, buffers: Sequence[B]) -> list[T]:
    """[task(i, buffer) for i in range(count)], run by this thread and up to len(buffers) − 1
    pool threads, each with a buffer of its own, taking the next task as they come free.

    The calling thread starts at once; the helpers join when they wake (which can take a while
    on a busy or virtual machine), so no thread idles while tasks are left. The helpers handle
    floating-point errors as the calling thread does.
    """
    helpers = min(len(buffers), count) - 1
    if helpers == 0:
        return [task(i, buffers[0]) for i in range(count)]
    results: list[T] = [None] * count  # type: ignore[list-item]
    claims = itertools.count()
    floating_point_errors = np.geterr()  # threads start from numpy's defaults; pass the caller's

    def work(buffer: B) -> None:
        with np.errstate(**floating_point_errors):
            while (i := next(claims)) < count:
                results[i] = task(i, buffer)

    pool = _workers_of(os.getpid()).pool
    joined = [pool.submit(work, buffer) for buffer in buffers[1 : helpers + 1]]
    try:
        work(buffers[0])
    finally:
        wait(joined)
    for helper in joined:
        helper.result()
    return results
