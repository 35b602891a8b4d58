"""Batched sweeps (``hydra/launcher=nnexp``, the default) against the hand-written MLflow loop
doing the same configs, MLflow's own minimum for the same records, and Hydra's basic launcher:
per config, from two sweep sizes, in wall time and in CPU time (user + system of the command),
contenders round-robin in one run."""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks import batched_training, processes
from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table
from benchmarks.markdown import verdict as markdown_verdict

GRID = ["optim.lr=range(1,9)", "regularization.l2=0,0.001", "seed=range(0,8)"]
DEFAULT, BASIC, LOOP, MINIMUM = "nnexp (default)", "nnexp, launcher=basic", "loop", "minimum"
TWO = "nnexp, n_jobs=2"
#: The issue's targets: per config against the loop and the minimum; basic against default;
#: two workers' throughput against one; PyTorch's time against the batched core's.
LOOP_TARGET, MINIMUM_TARGET, BASIC_TARGET, WORKERS_TARGET = 0.8, 1.15, 4.0, 1.6


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``command``; its wall time and CPU time (user + system, its children included)."""
    done = processes.measured(command, cwd)
    if done.exit != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.exit}:\n{done.stderr[-2000:]}")
    return done.wall, done.cpu


def nnexp(folder: Path, jobs: int, epochs: int, widths: bool, *extra: str) -> list[str]:
    """``nnexp-train -m`` over the grid's first configs (or hidden 1…jobs) into folder's store."""
    folder.mkdir(parents=True, exist_ok=True)
    if widths:
        axes = [f"model.hidden=range(1,{jobs + 1})"]
    else:  # the first `jobs` configs of lr × λ × seed: fewer lr values for a smaller sweep
        axes = [f"optim.lr=range(1,{jobs // 16 + 1})", *GRID[1:]] if jobs >= 16 else [
            "optim.lr=1", "regularization.l2=0", f"seed=range(0,{jobs})"
        ]  # fmt: skip
    return [
        sys.executable, "-m", "nnexp", "-m", *axes, f"optim.epochs={epochs}",
        f"tracking.uri={processes.store(folder)}", *extra,
    ]  # fmt: skip


def loop(folder: Path, mode: str, jobs: int, epochs: int) -> list[str]:
    """The hand-written loop (or MLflow's minimum) for the same configs."""
    folder.mkdir(parents=True, exist_ok=True)
    store = processes.store(folder)
    return [sys.executable, "-m", "benchmarks.grid_loop", mode, store, str(jobs), str(epochs)]


def per_config(samples: dict, name: str, sizes: tuple[int, int], index: int) -> list[float]:
    """Each round's (time at the large size − at the small) / (configs between)."""
    small, large = samples[name, sizes[0]], samples[name, sizes[1]]
    return [
        (b[index] - a[index]) / (sizes[1] - sizes[0]) for a, b in zip(small, large, strict=True)
    ]


def section(quick: bool) -> str:
    """The grid at one shape, the widths sweep, round-robin; per-config slopes and ratios."""
    epochs = 20 if quick else 100
    repeats = 1 if quick else 2
    grid_sizes = (16, 32) if quick else (8, 128)
    basic_sizes = (4, 8) if quick else (8, 32)
    width_sizes = (4, 8) if quick else (4, 32)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        commands = {}
        for jobs in grid_sizes:
            commands[DEFAULT, jobs] = nnexp(root / f"d{jobs}", jobs, epochs, False)
            commands[LOOP, jobs] = loop(root / f"l{jobs}", "grid", jobs, epochs)
            commands[MINIMUM, jobs] = loop(root / f"m{jobs}", "minimum", jobs, epochs)
        for jobs in basic_sizes:
            commands[BASIC, jobs] = nnexp(
                root / f"b{jobs}", jobs, epochs, False, "hydra/launcher=basic"
            )
        for jobs in width_sizes:
            commands["widths " + DEFAULT, jobs] = nnexp(root / f"wd{jobs}", jobs, epochs, True)
            commands["widths " + TWO, jobs] = nnexp(
                root / f"w2{jobs}", jobs, epochs, True, "hydra.launcher.n_jobs=2"
            )
            commands["widths " + LOOP, jobs] = loop(root / f"wl{jobs}", "widths", jobs, epochs)
        for (name, _), command in commands.items():  # stores created, untimed
            if name.endswith((LOOP, MINIMUM)):
                processes.run([*command[:-2], "1", "1"], processes.ROOT)
                continue
            (uri,) = [part for part in command if part.startswith("tracking.uri=")]
            store_dir = Path(uri.removeprefix("tracking.uri=sqlite:///")).parent
            processes.run([sys.executable, "-m", "nnexp", "optim.epochs=1", uri], store_dir)
        samples: dict = {key: [] for key in commands}
        for _ in range(repeats):
            for key, command in commands.items():
                cwd = processes.ROOT if key[0].endswith((LOOP, MINIMUM)) else root
                samples[key].append(timed(command, cwd))
    rows = []
    slopes = {}
    for name, sizes in (
        (DEFAULT, grid_sizes), (LOOP, grid_sizes), (MINIMUM, grid_sizes), (BASIC, basic_sizes),
        ("widths " + DEFAULT, width_sizes), ("widths " + TWO, width_sizes),
        ("widths " + LOOP, width_sizes),
    ):  # fmt: skip
        slopes[name] = [statistics.median(per_config(samples, name, sizes, i)) for i in (0, 1)]
        rows.append(
            [
                name,
                f"{sizes[0]}, {sizes[1]}",
                " / ".join(f"{statistics.median(w for w, _ in samples[name, j]):.1f} s"
                           for j in sizes),
                f"{slopes[name][0] * 1000:.1f} ms",
                f"{slopes[name][1] * 1000:.1f} ms",
            ]
        )  # fmt: skip

    def ratio(a: str, b: str, index: int) -> float:
        return slopes[a][index] / slopes[b][index]

    verdicts = []
    for label, a, b, target, above, index in (
        ("grid: default / loop", DEFAULT, LOOP, LOOP_TARGET, False, 1),
        ("grid: default (n_jobs=1) / loop", DEFAULT, LOOP, 1.0, False, 1),
        ("grid: default / MLflow minimum", DEFAULT, MINIMUM, MINIMUM_TARGET, False, 1),
        ("grid: basic / default", BASIC, DEFAULT, BASIC_TARGET, True, 1),
        ("widths: default / loop", "widths " + DEFAULT, "widths " + LOOP, 1.0, False, 1),
        ("widths: n_jobs=1 / n_jobs=2 (throughput)", "widths " + DEFAULT, "widths " + TWO,
         WORKERS_TARGET, True, 0),
    ):  # fmt: skip
        wall, cpu = ratio(a, b, 0), ratio(a, b, 1)
        judged = (wall, cpu)[index]
        ok = (judged >= target) if above else (judged <= target)
        verdicts.append(
            [label, f"{wall:.2f}×", f"{cpu:.2f}×",
             markdown_verdict(ok, f"{'≥' if above else '≤'} {target}× on {('wall', 'CPU')[index]}")]
        )  # fmt: skip
    training, torch_ratio = batched_training.rows(100 if not quick else 20, 3 if quick else 7)
    if torch_ratio is not None:
        verdicts.append(
            ["batched training: PyTorch bmm / nnexp", "", f"{torch_ratio:.2f}×",
             markdown_verdict(torch_ratio >= 1.0, "≥ 1.0× on CPU")]
        )  # fmt: skip
    method = (
        f"sleep_study, hidden 3, {epochs} epochs, costs every epoch. The grid is optim.lr 1…8 × "
        "regularization.l2 {0, 0.001} × seed 0…7 (its first J configs); `nnexp-train -m` with "
        "default settings (launcher nnexp: same-shape configs train as one batched computation, "
        "each config its own child run; the best child's pyfunc model logged on the parent) "
        "against `benchmarks/grid_loop.py grid` (each config trained alone with core.train, a "
        "child run with 18 params, both curves and the status tag in one log_batch, the same "
        "four files: weights.npz, config.yaml, overrides.yaml, costs.csv) and "
        "`grid_loop.py minimum` (the same MLflow calls and sizes, no training). The basic "
        "launcher runs the same grid with `hydra/launcher=basic` (one Hydra job a config, "
        "cost_curve.png drawn per job). Widths: `model.hidden=range(1, J+1)` against "
        "`grid_loop.py widths`. Per config = (time at the larger J − at the smaller) / "
        f"(difference), from {repeats} round-robin round(s), each command with its own SQLite "
        "store made beforehand; wall time and CPU time (user + system of the command and its "
        "worker processes). The host is shared (see the load figures), so the one-process "
        "ratios are judged on CPU time; the throughput of `hydra.launcher.n_jobs=2` against the "
        "default's one process on the widths sweep is a wall-time ratio of the per-job slopes. "
        "Batched training alone: "
        + batched_training.__doc__.split(": ", 1)[1].replace("\n", " ")
        + f" Median CPU time of {3 if quick else 7} round-robin rounds after a warm-up, one "
        "thread each; the costs of both are checked equal first."
    )
    body = table("command | J | wall time | per config (wall) | per config (CPU)", rows)
    if training:
        body += "\n\n" + table("batched training | CPU time per copy-epoch (min–median–max)",
                                training)  # fmt: skip
    body += "\n\n" + table("ratio | wall | CPU | target", verdicts)
    return markdown_section("Batched sweeps (hydra/launcher=nnexp)", method, body)
