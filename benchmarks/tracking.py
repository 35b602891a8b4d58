"""Tracking overhead of one run: ``nnexp-train`` tracked into SQLite, the same run untracked, and
the floor (``benchmarks/floor.py``, a minimal MLflow client script logging the same params,
metric points and files); plus what each path imports."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks import processes
from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table, verdict
from benchmarks.timing import compare, ratio

#: Most the tracked run (without the model) may cost, as a multiple of the floor.
TARGET = 1.5

HEADERS = "command | wall time per run | ratio to the floor | target"


def contenders(root: Path, epochs: int) -> dict[str, object]:
    """The four commands, each with its own store under ``root``."""
    run = [f"optim.epochs={epochs}"]
    return {
        "`nnexp-train tracking.enabled=false`": processes.harness(
            root / "untracked", *run, "tracking.enabled=false"
        ),
        "`nnexp-train tracking.log_model=false`": processes.harness(
            root / "tracked", *run, "tracking.log_model=false"
        ),
        "`nnexp-train` (default: also the pyfunc model)": processes.harness(root / "model", *run),
        "floor: `python -m benchmarks.floor`": processes.floor(root / "floor", 1, epochs),
    }


def imports(root: Path) -> str:
    """One line per path: total import time and whether mlflow and scikit-learn were imported."""
    lines = []
    for label, overrides in (
        ("untracked run", ["tracking.enabled=false"]),
        ("tracked run", [f"tracking.uri={processes.store(root / 'imports')}"]),
    ):
        seconds, packages = processes.import_seconds(
            root / "imports", "-m", "nnexp", "optim.epochs=0", *overrides
        )
        heavy = [name for name in ("mlflow", "sklearn", "matplotlib") if name in packages]
        lines.append(f"- {label}: imports take {seconds:.2f} s; imported: {', '.join(heavy)}")
    return "\n".join(lines)


def section(quick: bool) -> str:
    """Wall time per run of each command, round-robin; the tracked/floor ratio against TARGET."""
    repeats, epochs = (2, 100) if quick else (7, 1000)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        times = compare(contenders(root, epochs), repeats, warmup=1)
        imported = imports(root)
    names = list(times)
    floor = times[names[-1]]
    rows = []
    for name, timing in times.items():
        share = ratio(timing, floor)
        target = verdict(share <= TARGET, f"≤ {TARGET}×") if name == names[1] else ""
        rows.append([name, timing.spread(), f"{share:.2f}×", target])
    overhead = times[names[1]].median - times[names[0]].median
    method = (
        f"One sleep_study run of {epochs} epochs (hidden 3, lr 2, costs logged every epoch) as a "
        "user starts it: a fresh interpreter per call, each command with its own SQLite store "
        "(created in the warm-up round, so no call pays the schema migration). The floor is "
        "`benchmarks/floor.py`: a minimal hand-written MLflow client script that trains the same "
        "way with `nnexp.core`, creates a run, logs the same 18 params and both cost curves in one "
        "`log_batch`, writes and uploads the same five files (weights.npz, config.yaml, "
        "overrides.yaml, cost_curve.png, costs.csv) and ends the run. The harness also logs the "
        "dataset as an MLflow input, provenance tags and, by default, a pyfunc model. "
        f"Round-robin, {repeats} rounds after a warm-up; min–median–max; ratio = median of the "
        f"rounds' ratios. Tracking costs the harness {overhead:.2f} s a run (median tracked − "
        "untracked), most of it `import mlflow` and opening the SQLAlchemy store.\n\n"
        "`python -X importtime` of the entry point (sum of top-level imports):\n\n" + imported
    )
    return markdown_section("Tracking overhead of a run", method, table(HEADERS, rows))
