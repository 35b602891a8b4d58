"""Progress of a sweep, owned by its launching process. Each job appends one line to a file in
the sweep folder when it ends (one ``write`` of a short line to a file opened for appending, so
parallel jobs never interleave); the launching process watches that file and shows, on a
terminal, one live line (done/failed/total, elapsed, time left, best test_cost), or in a pipe a
plain line per finished job. Works alike for the basic, joblib and Optuna launchers, and no job
draws anything itself."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from nnexp.console import err_console
from nnexp.safety.printable import printable_line

PROGRESS_FILE = ".nnexp_progress.jsonl"
#: How often the launching process looks for finished jobs (seconds).
POLL_SECONDS = 0.25


def record_job_end(
    sweep_dir: Path, job_num: int | None, overrides: list[str], status: str, test_cost: float
) -> None:
    """Append this job's end (finished, skipped or failed, and its final test_cost)."""
    line = json.dumps(
        {"job": job_num, "overrides": overrides, "status": status, "test_cost": test_cost}
    )
    descriptor = os.open(sweep_dir / PROGRESS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (line + "\n").encode())
    finally:
        os.close(descriptor)


@dataclass
class Tally:
    """Jobs ended so far, failures among them, and the best final test_cost."""

    done: int = 0
    failed: int = 0
    best: float = math.inf

    def add(self, record: dict) -> None:
        """Count one ended job."""
        self.done += 1
        if record["status"] == "failed":
            self.failed += 1
        elif math.isfinite(record["test_cost"]):
            self.best = min(self.best, record["test_cost"])

    def best_text(self) -> str:
        """The best test_cost, or a dash before any job finished."""
        return f"{self.best:.6g}" if math.isfinite(self.best) else "–"


def clock(seconds: float) -> str:
    """Seconds as h:mm:ss."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def eta_text(elapsed: float, done: int, total: int | None) -> str:
    """Time left at the mean pace so far; ``?`` while it cannot be told."""
    if not total or not done:
        return "?"
    return clock(elapsed / done * max(total - done, 0))


def plain_line(tally: Tally, total: int | None, elapsed: float, record: dict) -> str:
    """One finished job for a pipe or a CI log."""
    cost = record["test_cost"]
    return (
        f"sweep: {tally.done}/{total or '?'} done, {tally.failed} failed · "
        f"elapsed {clock(elapsed)} · left ~{eta_text(elapsed, tally.done, total)} · "
        f"best test_cost {tally.best_text()} · job {record['job']} {record['status']}: "
        f"{' '.join(record['overrides'])}"
        + (f" test_cost={cost:.6g}" if math.isfinite(cost) else "")
    )


class SweepProgress:
    """Watches the sweep folder's progress file from a thread of the launching process."""

    def __init__(self, sweep_dir: Path, total: int | None, live: bool | None = None):
        self.path = sweep_dir / PROGRESS_FILE
        self.total = total
        self.live = sys.stderr.isatty() if live is None else live
        self.tally = Tally()
        self._offset = 0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sweep-progress", daemon=True)
        self._bar: Progress | None = None
        self._task = None

    def start(self) -> None:
        """Begin watching (and, on a terminal, draw the live line)."""
        if self.live:
            self._bar = Progress(
                TextColumn("sweep"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("done, {task.fields[failed]} failed"),
                TimeElapsedColumn(),
                TextColumn(
                    "elapsed, left ~{task.fields[left]} · best test_cost {task.fields[best]}"
                ),
                console=err_console,
                redirect_stdout=True,
                redirect_stderr=True,
            )
            self._task = self._bar.add_task("sweep", total=self.total, failed=0, left="?", best="–")
            self._bar.start()
        self._thread.start()

    def stop(self) -> None:
        """Read what is left, draw the final state and stop."""
        self._stop.set()
        self._thread.join()
        self._read()
        if self._bar is not None:
            self._bar.stop()

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._read()

    def _read(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode().splitlines():
            record = json.loads(line)
            self.tally.add(record)
            self._show(record)

    def _show(self, record: dict) -> None:
        elapsed = time.monotonic() - self._started
        if self._bar is not None:
            self._bar.update(
                self._task,
                completed=self.tally.done,
                failed=self.tally.failed,
                left=eta_text(elapsed, self.tally.done, self.total),
                best=self.tally.best_text(),
            )
        else:
            line = printable_line(plain_line(self.tally, self.total, elapsed, record))
            print(line, file=sys.stderr, flush=True)
