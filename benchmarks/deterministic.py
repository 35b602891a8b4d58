"""``model.deterministic=true`` against the default: the same training in a process on the
baseline (OpenBLAS's Nehalem kernel, numpy's baseline loops, one BLAS thread) and in one as the
machine sets it up. Each contender is its own process (the kernel is chosen when numpy loads);
``python -m benchmarks.deterministic SHAPE EPOCHS CALLS QUICK ON`` is one such process's timed
calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from benchmarks import workloads
from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table
from benchmarks.processes import ROOT
from benchmarks.timing import Timing, ratio
from nnexp.provenance import machine
from nnexp.run import deterministic

HEADERS = "shape | default / epoch | deterministic / epoch | deterministic cost"


def problem(shape: str, quick: bool) -> workloads.Problem:
    """The digits or synthetic problem of the epoch table (synthetic smaller when quick)."""
    if shape == "digits":
        return workloads.digits()
    return workloads.synthetic(n=20_000) if quick else workloads.synthetic()


def timed_calls(shape: str, epochs: int, calls: int, quick: bool, on: bool) -> list[float]:
    """Seconds per epoch of ``calls`` ``core.train`` calls after a warm-up call, in this
    process (one BLAS thread when ``on``)."""
    run = workloads.ours(problem(shape, quick), epochs)
    samples = []
    with deterministic.training_threads(on):
        run()
        for _ in range(calls):
            start = time.perf_counter()
            run()
            samples.append((time.perf_counter() - start) / epochs)
    return samples


def in_process(shape: str, epochs: int, calls: int, quick: bool, on: bool) -> list[float]:
    """``timed_calls`` in a fresh interpreter, on the baseline when ``on``."""
    env = dict(os.environ)
    if on:
        env = machine.baseline_environment(machine.this_machine(), env)
    arguments = [shape, str(epochs), str(calls), str(quick), str(on)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.deterministic", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def section(quick: bool) -> str:
    """Per shape: both modes' time per epoch and the deterministic mode's cost (a ratio)."""
    rounds, calls = (1, 2) if quick else (3, 3)
    rows = []
    for shape, epochs in shapes(quick):
        samples: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(rounds):
            for on in (False, True):
                samples[on] += in_process(shape, epochs, calls, quick, on)
        default, baseline = Timing(tuple(samples[False])), Timing(tuple(samples[True]))
        rows.append(
            [
                problem(shape, quick).shape,
                default.spread(),
                baseline.spread(),
                f"{ratio(baseline, default):.2f}× the default's time",
            ]
        )
    here = machine.this_machine()
    method = (
        "`model.deterministic=true` against the default: `core.train` (full batch, lr 0.1, "
        f"λ 1e-4, no test set, {epochs_text(quick)}) in a fresh process per contender and "
        f"round, one warm-up call then {calls} timed calls; the default process as the machine "
        "sets it up (OpenBLAS kernel "
        f"{here.blas_kernel}, numpy loops {here.numpy_simd or 'baseline'}, "
        f"{here.cpus} CPUs), the deterministic one on the baseline (OpenBLAS's "
        f"{machine.BASELINE_KERNEL} kernel, numpy's baseline loops, one BLAS thread). The two "
        f"alternate for {rounds} rounds; min–median–max per epoch over the {rounds * calls} "
        "calls, the cost is the median of the ratios of calls paired by round and order."
    )
    return markdown_section("Deterministic mode's cost", method, table(HEADERS, rows))


def shapes(quick: bool) -> list[tuple[str, int]]:
    """(shape, epochs per timed call)."""
    return [("digits", 20 if quick else 100), ("synthetic", 1 if quick else 2)]


def epochs_text(quick: bool) -> str:
    """The epochs per timed call of each shape, for the method paragraph."""
    return ", ".join(f"{shape} {epochs} epochs per call" for shape, epochs in shapes(quick))


if __name__ == "__main__":
    shape, epochs, calls, quick, on = sys.argv[1:]
    print(json.dumps(timed_calls(shape, int(epochs), int(calls), quick == "True", on == "True")))
