"""Seeds batched into one ``core.train`` call against one call per seed."""

from __future__ import annotations

from benchmarks import workloads
from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table, verdict
from benchmarks.timing import compare, ratio
from benchmarks.workloads import Problem

#: Least throughput gain of the batched call on sleep_study.
GAIN = 10.0

HEADERS = "shape | seeds | batched / seed-epoch | separate / seed-epoch | throughput gain | target"


def problems(quick: bool) -> list[tuple[Problem, int, int]]:
    """(problem, seeds, epochs per timed call)."""
    if quick:
        return [(workloads.sleep_study(), 32, 50), (workloads.digits(), 8, 2)]
    return [(workloads.sleep_study(), 32, 1000), (workloads.digits(), 8, 50)]


def separately(problem: Problem, seeds: int, epochs: int):
    """One call: ``seeds`` separate ``core.train`` calls, one seed each."""
    runs = [workloads.ours(problem, epochs, seed=seed) for seed in range(seeds)]

    def run() -> None:
        for one in runs:
            one()

    return run


def section(quick: bool) -> str:
    """Per shape: time per seed-epoch of the batched call and of separate calls."""
    repeats = 2 if quick else 7
    rows = []
    for problem, seeds, epochs in problems(quick):
        times = compare(
            {
                "batched": workloads.ours(problem, epochs, copies=seeds),
                "separate": separately(problem, seeds, epochs),
            },
            repeats,
            warmup=1,
            units=seeds * epochs,
        )
        gain = ratio(times["separate"], times["batched"])
        target = verdict(gain >= GAIN, f"≥ {GAIN:g}×") if problem.name == "sleep_study" else ""
        rows.append(
            [
                problem.shape,
                seeds,
                times["batched"].spread(),
                times["separate"].spread(),
                f"{gain:.1f}×",
                target,
            ]
        )
    method = (
        "`train.seeds=K`: K seeds' weights stacked on a leading copy axis and trained in one "
        "`core.train` call, against K `core.train` calls with one seed each (same initial "
        "weights, full batch, lr 0.1, λ 1e-4, cost recorded every epoch, no test set). Time per "
        f"seed-epoch, round-robin, {repeats} rounds after a warm-up (min–median–max); the gain "
        "is the median of the rounds' ratios."
    )
    return markdown_section("Batched seeds", method, table(HEADERS, rows))
