"""Our epoch in float32 against float64, and how closely the float32 cost curve follows."""

from __future__ import annotations

import numpy as np

from benchmarks import workloads
from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table, verdict
from benchmarks.timing import compare, ratio
from benchmarks.workloads import Problem

#: Least float32 speed-up at the largest shape, and the largest relative curve difference.
SPEEDUP, CURVE_TOLERANCE = 1.6, 1e-4

HEADERS = (
    "shape | float64 / epoch | float32 / epoch | float32 speed-up | target"
    " | cost curves: max relative difference | target"
)


def problems(quick: bool) -> list[tuple[Problem, int, int]]:
    """(float64 problem, epochs per timed call, epochs of the compared curves)."""
    if quick:
        return [(workloads.digits(), 10, 50), (workloads.synthetic(n=20_000), 1, 5)]
    return [(workloads.digits(), 200, 500), (workloads.synthetic(), 10, 30)]


def curve_difference(problem: Problem, epochs: int) -> float:
    """max over epochs of |C32 − C64| / C64 for the same initial weights (float32 = cast)."""
    curves = []
    for dtype in (np.float64, np.float32):
        result = workloads.ours(problem.astype(dtype), epochs)()
        curves.append(result.history.as_arrays()[1][:, 0])
    return float(np.max(np.abs(curves[1] - curves[0]) / curves[0]))


def section(quick: bool) -> str:
    """Per shape: both dtypes' time per epoch, the speed-up, and the curves' agreement."""
    repeats = 2 if quick else 7
    rows = []
    for problem, epochs, curve_epochs in problems(quick):
        single = problem.astype(np.float32)
        times = compare(
            {
                "float64": workloads.ours(problem, epochs),
                "float32": workloads.ours(single, epochs),
            },
            repeats,
            warmup=1,
            units=epochs,
        )
        speedup = ratio(times["float64"], times["float32"])
        difference = curve_difference(problem, curve_epochs)
        largest = problem.name == "synthetic"
        rows.append(
            [
                problem.shape,
                times["float64"].spread(),
                times["float32"].spread(),
                f"{speedup:.2f}×",
                verdict(speedup >= SPEEDUP, f"≥ {SPEEDUP}×") if largest else "",
                f"{difference:.1e} over {curve_epochs} epochs",
                verdict(difference <= CURVE_TOLERANCE, f"≤ {CURVE_TOLERANCE:g}"),
            ]
        )
    method = (
        "`model.dtype=float32`: the same training (`core.train`, full batch, lr 0.1, λ 1e-4, "
        "no test set) with X, y and the weights in float32 against float64, timed round-robin "
        f"as in the epoch table ({repeats} rounds after a warm-up; min–median–max, ratio = "
        "median of the rounds' ratios). The float32 weights start as the float64 ones cast; "
        "the curve difference compares the training cost recorded at every epoch."
    )
    return markdown_section("float32 against float64", method, table(HEADERS, rows))
