"""``model.deterministic=true`` against the default: the same training in a process on the
baseline (OpenBLAS's Nehalem kernel, numpy's baseline loops, one BLAS thread) and in one as the
machine sets it up. Each contender is its own process (the kernel is chosen when numpy loads);
``python -m benchmarks.deterministic SHAPE EPOCHS QUICK ON`` is one such process's timed call."""

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
from nnexp import deterministic, machine

HEADERS = "shape | default / epoch | deterministic / epoch | deterministic cost"


def problem(shape: str, quick: bool) -> workloads.Problem:
    """The digits or synthetic problem of the epoch table (synthetic smaller when quick)."""
    if shape == "digits":
        return workloads.digits()
    return workloads.synthetic(n=20_000) if quick else workloads.synthetic()


def timed_call(shape: str, epochs: int, quick: bool, on: bool) -> float:
    """Seconds per epoch of one ``core.train`` call after a warm-up call, in this process."""
    run = workloads.ours(problem(shape, quick), epochs)
    with deterministic.training_threads(on):
        run()
        start = time.perf_counter()
        run()
        return (time.perf_counter() - start) / epochs


def in_process(shape: str, epochs: int, quick: bool, on: bool) -> float:
    """``timed_call`` in a fresh interpreter, on the baseline when ``on``."""
    env = dict(os.environ)
    if on:
        env = machine.baseline_environment(machine.this_machine(), env)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.deterministic", shape, str(epochs), str(quick), str(on)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout))


def section(quick: bool) -> str:
    """Per shape: both modes' time per epoch and the deterministic mode's cost (a ratio)."""
    rounds = 2 if quick else 7
    rows = []
    for shape, epochs in (("digits", 20 if quick else 200), ("synthetic", 1 if quick else 10)):
        samples: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(rounds):
            for on in (False, True):
                samples[on].append(in_process(shape, epochs, quick, on))
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
        "λ 1e-4, no test set) in a fresh process per call, one warm-up call then one timed "
        f"call; the default process as the machine sets it up (OpenBLAS kernel "
        f"{here.blas_kernel}, numpy loops {here.numpy_simd or 'baseline'}, "
        f"{here.cpus} CPUs), the deterministic one on the baseline (OpenBLAS's "
        f"{machine.BASELINE_KERNEL} kernel, numpy's baseline loops, one BLAS thread). The two "
        f"alternate for {rounds} rounds; min–median–max per epoch, the cost is the median of "
        "the rounds' ratios."
    )
    return markdown_section("Deterministic mode's cost", method, table(HEADERS, rows))


if __name__ == "__main__":
    shape, epochs, quick, on = sys.argv[1:]
    print(json.dumps(timed_call(shape, int(epochs), quick == "True", on == "True")))
