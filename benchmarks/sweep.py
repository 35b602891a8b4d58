"""Per-job overhead of a basic (sequential) sweep: ``nnexp-train -m`` against the floor script
logging the same jobs, both at two sweep sizes so the start-up cost falls out."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks import processes, workloads
from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table
from benchmarks.timing import Timing, compare, human_seconds

EPOCHS = 100

HEADERS = "command | jobs | wall time | per job | start-up | per job / floor's"


def harness(folder: Path, jobs: int, *overrides: str):
    """One call: a basic sweep over hidden 1 … jobs of sleep_study, EPOCHS epochs."""
    return processes.harness(
        folder, "-m", f"model.hidden=range(1,{jobs + 1})", f"optim.epochs={EPOCHS}", *overrides
    )


def per_job(small: Timing, large: Timing, sizes: tuple[int, int]) -> list[float]:
    """Each round's slope: (large − small) / (jobs difference)."""
    return [
        (b - a) / (sizes[1] - sizes[0]) for a, b in zip(small.samples, large.samples, strict=True)
    ]


def section(quick: bool) -> str:
    """Wall time of each command at both sizes, round-robin; per-job slope and start-up."""
    sizes, repeats = ((2, 4), 1) if quick else ((4, 32), 3)
    commands = {
        "`nnexp-train -m … tracking.log_model=false`": ("tracking.log_model=false",),
        "`nnexp-train -m …` (default: also the pyfunc model)": (),
    }
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        contenders = {}
        for index, (name, overrides) in enumerate(commands.items()):
            for jobs in sizes:
                contenders[name, jobs] = harness(root / f"h{index}-{jobs}", jobs, *overrides)
        for jobs in sizes:
            contenders["floor: `python -m benchmarks.floor`", jobs] = processes.floor(
                root / f"floor-{jobs}", jobs, EPOCHS
            )
        times = compare(contenders, repeats, warmup=1)
    training = compare({"train": workloads.ours(workloads.sleep_study(), EPOCHS)}, 20, warmup=2)[
        "train"
    ]
    names = list(dict.fromkeys(name for name, _ in times))
    slopes = {name: per_job(times[name, sizes[0]], times[name, sizes[1]], sizes) for name in names}
    floor = slopes[names[-1]]
    rows = []
    for name in names:
        slope = statistics.median(slopes[name])
        startup = times[name, sizes[0]].median - sizes[0] * slope
        share = statistics.median(a / b for a, b in zip(slopes[name], floor, strict=True))
        for jobs in sizes:
            rows.append(
                [
                    name,
                    jobs,
                    times[name, jobs].spread(),
                    human_seconds(slope),
                    human_seconds(startup),
                    f"{share:.2f}×",
                ]
            )
    method = (
        f"Sweeps over `model.hidden=range(1, J+1)` on sleep_study, {EPOCHS} epochs a job, costs "
        f"logged every epoch, basic launcher (one process, jobs in sequence), for J = {sizes[0]} "
        f"and {sizes[1]}, each command with its own SQLite store created in the warm-up round. "
        "The floor is `benchmarks/floor.py` doing the same jobs and logging (a parent run, one "
        "child run per job with its params, both curves in one `log_batch` and the same five "
        "files) in one plain loop. Per job = (wall time at J = "
        f"{sizes[1]} − at J = {sizes[0]}) / {sizes[1] - sizes[0]}, the median over "
        f"{repeats} round-robin rounds after a warm-up; start-up = wall time at J = {sizes[0]} − "
        f"{sizes[0]} jobs. The training itself (`core.train` alone) takes "
        f"{human_seconds(training.median)} of a job. "
        "Beyond the floor, a harness job composes its config with Hydra (twice: the basic sweeper "
        "validates the batch first), saves Hydra's .hydra files, logs the dataset input and "
        "provenance tags, and checks for a finished run when resuming."
    )
    return markdown_section("Per-job overhead of a sweep", method, table(HEADERS, rows))
