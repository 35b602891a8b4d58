"""Per-job cost and start-up of a sweep: ``nnexp-train -m`` (basic launcher, default settings)
against the hand-written MLflow loop doing the same jobs, at two sweep sizes and two lengths,
and the throughput of the joblib launcher on 2 workers against the basic one."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks import processes, workloads
from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table
from benchmarks.markdown import verdict as markdown_verdict
from benchmarks.timing import Timing, compare, human_seconds

HARNESS, LOOP, JOBLIB = "`nnexp-train -m …`", "loop: `python -m benchmarks.floor`", "joblib"
PER_JOB_TARGET, STARTUP_TARGET, JOBLIB_TARGET = 1.1, 1.2, 1.7

HEADERS = (
    "epochs | command | wall time at J = {small} | at J = {large} | per job | start-up | "
    "per job / loop's | start-up / loop's | target"
)


def harness(folder: Path, jobs: int, epochs: int, *overrides: str):
    """One call: a sweep over hidden 1 … jobs of sleep_study with default settings."""
    return processes.harness(
        folder, "-m", f"model.hidden=range(1,{jobs + 1})", f"optim.epochs={epochs}", *overrides
    )


def prime(root: Path) -> None:
    """Create every contender's store (schema, experiment) with a one-epoch run, untimed, so no
    timed call pays the migration: a cheaper warm-up than a whole untimed round."""
    for folder in sorted(root.iterdir()):
        if folder.name.startswith("loop"):
            processes.floor(folder, 1, 1)()
        else:
            processes.harness(folder, "optim.epochs=1")()


def slopes(small: Timing, large: Timing, sizes: tuple[int, int]) -> list[float]:
    """Each round's per-job cost: (large − small) / (jobs difference)."""
    return [
        (b - a) / (sizes[1] - sizes[0]) for a, b in zip(small.samples, large.samples, strict=True)
    ]


def intercepts(small: Timing, slope: list[float], jobs: int) -> list[float]:
    """Each round's start-up: the wall time at ``jobs`` less ``jobs`` times that round's slope."""
    return [t - jobs * s for t, s in zip(small.samples, slope, strict=True)]


def verdict(value: float, target: float, above: bool = False) -> str:
    """met/missed against a ≤ (or, with ``above``, ≥) target."""
    ok = value >= target if above else value <= target
    return markdown_verdict(ok, f"{'≥' if above else '≤'} {target}×")


def median_ratio(a: list[float], b: list[float]) -> float:
    """The median of the rounds' ratios a / b."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def section(quick: bool) -> str:
    """Wall times round-robin; per-job slope, start-up and their ratios to the loop's; joblib's
    throughput against the basic launcher's at the large size."""
    sizes, lengths, repeats = ((2, 4), (20, 100), 1) if quick else ((4, 32), (100, 1000), 3)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        contenders = {}
        for epochs in lengths:
            for jobs in sizes:
                contenders[HARNESS, epochs, jobs] = harness(
                    root / f"h-{epochs}-{jobs}", jobs, epochs
                )
                contenders[LOOP, epochs, jobs] = processes.floor(
                    root / f"loop-{epochs}-{jobs}", jobs, epochs
                )
        for jobs in sizes:
            contenders[JOBLIB, lengths[0], jobs] = harness(
                root / f"joblib-{jobs}",
                jobs,
                lengths[0],
                "hydra/launcher=joblib",
                "hydra.launcher.n_jobs=2",
            )
        prime(root)
        times = compare(contenders, repeats, warmup=0)
    training = {
        epochs: compare({"train": workloads.ours(workloads.sleep_study(), epochs)}, 20, warmup=2)[
            "train"
        ].median
        for epochs in lengths
    }
    rows, throughput = [], []
    for epochs in lengths:
        per_job = {
            name: slopes(times[name, epochs, sizes[0]], times[name, epochs, sizes[1]], sizes)
            for name in (HARNESS, LOOP)
        }
        startup = {
            name: intercepts(times[name, epochs, sizes[0]], per_job[name], sizes[0])
            for name in (HARNESS, LOOP)
        }
        for name in (HARNESS, LOOP):
            job_ratio = median_ratio(per_job[name], per_job[LOOP])
            startup_ratio = median_ratio(startup[name], startup[LOOP])
            rows.append(
                [
                    epochs,
                    name,
                    times[name, epochs, sizes[0]].spread(),
                    times[name, epochs, sizes[1]].spread(),
                    human_seconds(statistics.median(per_job[name])),
                    human_seconds(statistics.median(startup[name])),
                    f"{job_ratio:.2f}×",
                    f"{startup_ratio:.2f}×",
                    ""
                    if name == LOOP
                    else f"per job {verdict(job_ratio, PER_JOB_TARGET)}, start-up "
                    f"{verdict(startup_ratio, STARTUP_TARGET)}",
                ]
            )
    basic, joblib = times[HARNESS, lengths[0], sizes[1]], times[JOBLIB, lengths[0], sizes[1]]
    wall_gain = median_ratio(list(basic.samples), list(joblib.samples))
    rate = {
        name: slopes(times[name, lengths[0], sizes[0]], times[name, lengths[0], sizes[1]], sizes)
        for name in (HARNESS, JOBLIB)
    }
    gain = median_ratio(rate[HARNESS], rate[JOBLIB])
    throughput.append(
        [
            lengths[0],
            sizes[1],
            basic.spread(),
            joblib.spread(),
            f"{wall_gain:.2f}×",
            human_seconds(statistics.median(rate[HARNESS])),
            human_seconds(statistics.median(rate[JOBLIB])),
            f"{gain:.2f}×",
            verdict(gain, JOBLIB_TARGET, above=True),
        ]
    )
    headers = HEADERS.format(small=sizes[0], large=sizes[1])
    method = (
        f"Sweeps over `model.hidden=range(1, J+1)` on sleep_study with default settings (costs "
        f"logged every epoch; the best child's pyfunc model logged on the parent at the end), "
        f"basic launcher (one process, jobs in sequence), J = {sizes[0]} and {sizes[1]}, "
        f"{' and '.join(map(str, lengths))} epochs a job, each command with its own SQLite store "
        "created beforehand by an untimed one-epoch run. The loop is `benchmarks/floor.py`: "
        "a hand-written MLflow "
        "client loop doing the same jobs and logging (a parent run, one child run per job with "
        "its 18 params, both curves in one `log_batch` and the same five files, pyplot for the "
        f"PNG). Per job = (wall time at J = {sizes[1]} − at J = {sizes[0]}) / "
        f"{sizes[1] - sizes[0]} and start-up = wall time at J = {sizes[0]} − {sizes[0]} × per "
        f"job, each taken per round; ratios are medians of the rounds' ratios over {repeats} "
        "round-robin rounds, so load from other processes falls on all alike. "
        "The training itself (`core.train` alone) takes "
        + ", ".join(f"{human_seconds(training[e])} at {e} epochs" for e in lengths)
        + f". Throughput: the {lengths[0]}-epoch sweeps with "
        "`hydra/launcher=joblib hydra.launcher.n_jobs=2` against the basic launcher in the same "
        f"rounds: the wall time at J = {sizes[1]} (start-up included: each joblib worker imports "
        "nnexp and MLflow once), and the throughput once running, jobs per second from the "
        "per-job slope as above (basic's per job / joblib's)."
    )
    throughput_table = table(
        "epochs | jobs | basic launcher | joblib, 2 workers | wall-time gain | basic per job | "
        "joblib per job | throughput gain | target",
        throughput,
    )
    return markdown_section(
        "Per-job cost of a sweep", method, table(headers, rows) + "\n\n" + throughput_table
    )
