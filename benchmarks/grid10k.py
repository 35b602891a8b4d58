"""A 10,000-config grid into a fresh SQLite store: ``nnexp-train -m`` with default settings over
optim.lr 1…10 × regularization.l2 {0, 1e-4, …, 9e-4} × seed 0…99 on sleep_study (hidden 3, 100
epochs, costs every epoch), as a user starts it: wall time, CPU time and peak memory of the
command, then the store checked: every child FINISHED and both cost curves complete (101 points
each)."""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

from benchmarks import processes
from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table
from benchmarks.markdown import verdict as markdown_verdict

#: The issue's target: the whole grid within this many seconds on 2 cores.
TARGET_SECONDS = 600

COMPLETE = """
SELECT count(*) FROM (
  SELECT m.run_uuid FROM metrics m JOIN runs r ON r.run_uuid = m.run_uuid
  WHERE r.status = 'FINISHED' AND m.key IN ('train_cost', 'test_cost')
  GROUP BY m.run_uuid, m.key HAVING count(*) = :points
)
"""


def grid(seeds: int) -> list[str]:
    """The sweep's axes: 10 × 10 × ``seeds`` configs."""
    l2 = ",".join(["0", *(f"{k}e-4" for k in range(1, 10))])
    return ["optim.lr=range(1,11)", f"regularization.l2={l2}", f"seed=range(0,{seeds})"]


def run(folder: Path, seeds: int, epochs: int) -> dict[str, float]:
    """The sweep into ``folder``'s fresh store: wall, CPU (s), peak RSS (MiB), children and
    complete curves."""
    store = processes.store(folder)
    command = [
        sys.executable, "-m", "nnexp", "-m", *grid(seeds), f"optim.epochs={epochs}",
        f"tracking.uri={store}", f"hydra.sweep.dir={folder / 'sweep'}",
    ]  # fmt: skip
    done = processes.measured(command, folder)
    with sqlite3.connect(folder / "mlflow.db") as db:
        children = db.execute(
            "SELECT count(*) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE t.key = 'mlflow.parentRunId' AND r.status = 'FINISHED'"
        ).fetchone()[0]
        curves = db.execute(COMPLETE, {"points": epochs + 1}).fetchone()[0]
    return {
        "exit": done.exit,
        "wall": done.wall,
        "cpu": done.cpu,
        "peak": done.peak_mib,
        "children": children,
        "curves": curves,
    }


def section(quick: bool) -> str:
    """One run of the grid (100 configs with --quick)."""
    seeds, epochs = (1, 20) if quick else (100, 100)
    with tempfile.TemporaryDirectory() as folder:
        got = run(Path(folder), seeds, epochs)
    configs = 100 * seeds
    ok = (
        got["exit"] == 0
        and got["wall"] <= TARGET_SECONDS
        and got["children"] == configs
        and got["curves"] == 2 * configs
    )
    body = table(
        "configs | wall time | CPU time | peak memory | exit | FINISHED children | "
        "complete curves | target",
        [[
            configs, f"{got['wall']:.0f} s", f"{got['cpu']:.0f} s", f"{got['peak']:.0f} MiB",
            got["exit"], got["children"], got["curves"],
            markdown_verdict(ok, f"≤ {TARGET_SECONDS // 60} min, all FINISHED and complete"),
        ]],
    )  # fmt: skip
    method = (
        f"`nnexp-train -m {' '.join(grid(seeds))} optim.epochs={epochs}` with default settings "
        "(launcher nnexp, one process; sleep_study, hidden 3, costs every epoch, the best child's "
        "pyfunc model on the parent) into a fresh SQLite store, run once as a fresh process. "
        "Peak memory is the largest resident set of the command's processes; CPU time is user "
        "+ system of the command and its children. The store is then read with SQL: FINISHED "
        f"children, and (run, cost) curves with all {epochs + 1} points. "
        "Command: `python -m benchmarks grid10k`."
    )
    return markdown_section("A 10,000-config grid", method, body)
