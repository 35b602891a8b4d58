"""Our epoch against scikit-learn, PyTorch and the epoch's bare matrix products (float64)."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks import peers, workloads
from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table, verdict
from benchmarks.timing import Timing, compare, ratio
from benchmarks.workloads import Problem

#: Our least speed-up over scikit-learn, and the most an epoch may cost in GEMM-only epochs.
SKLEARN_SPEEDUP, GEMM_FACTOR = 2.0, 1.6

HEADERS = "shape | peer | ours / epoch | peer / epoch | ratio | target"


def problems(quick: bool) -> list[tuple[Problem, int]]:
    """(problem, epochs per timed call), so that a call of ours lasts 0.1 s or more."""
    if quick:
        return [
            (workloads.sleep_study(), 200),
            (workloads.digits(), 10),
            (workloads.synthetic(n=20_000), 2),
        ]
    return [
        (workloads.sleep_study(), 5000),
        (workloads.digits(), 200),
        (workloads.synthetic(), 10),
    ]


def contenders(problem: Problem, epochs: int) -> dict[str, Callable[[], object]]:
    """Ours, then every peer available here, each one call = ``epochs`` epochs."""
    runs = {
        "ours": workloads.ours(problem, epochs),
        "scikit-learn": peers.sklearn_mlp(problem, epochs),
        "GEMM only": workloads.gemm_only(problem, epochs),
    }
    if peers.torch_version() is not None:
        runs["PyTorch"] = peers.torch_net(problem, epochs)
    return runs


def rows(problem: Problem, times: dict[str, Timing]) -> list[list[str]]:
    """One row per peer: times, ratio and (where there is one) the target's verdict."""
    ours = times["ours"]
    table_rows = []
    for peer in ("scikit-learn", "PyTorch", "GEMM only"):
        if peer not in times:
            table_rows.append([problem.shape, peer, ours.spread(), peers.TORCH_MISSING, "", ""])
            continue
        if peer == "GEMM only":
            factor = ratio(ours, times[peer])
            cells = [f"ours = {factor:.2f}× GEMM only", ""]
            if problem.name == "synthetic":
                cells[1] = verdict(factor <= GEMM_FACTOR, f"≤ {GEMM_FACTOR}×")
        else:
            speedup = ratio(times[peer], ours)
            cells = [f"ours {speedup:.2f}× faster", ""]
            if peer == "scikit-learn":
                cells[1] = verdict(speedup >= SKLEARN_SPEEDUP, f"≥ {SKLEARN_SPEEDUP}×")
        table_rows.append([problem.shape, peer, ours.spread(), times[peer].spread(), *cells])
    return table_rows


def section(quick: bool) -> str:
    """Per shape, our time per epoch against each peer's, with the ratio."""
    repeats = 2 if quick else 7
    table_rows = []
    for problem, epochs in problems(quick):
        times = compare(contenders(problem, epochs), repeats, warmup=1, units=epochs, settle=0.2)
        table_rows += rows(problem, times)
    method = (
        "Wall time per full-batch float64 epoch (forward pass, cost, gradients, one descent "
        "step), every contender starting from the same Xavier weights with lr 0.1 and λ 1e-4. "
        "Ours is `core.train` without a test set, recording the cost every epoch like the "
        "harness; a timed call runs many epochs and is divided by their number. The contenders "
        f"run round-robin, one warm-up round then {repeats} timed ones; times are "
        "min–median–max over rounds, a ratio is the median of the rounds' ratios. "
        f"{peers.SETUP} GEMM only: the five matrix products of an epoch at full size into "
        "preallocated outputs, no elementwise work, with the BLAS's own threads. Ours can come "
        "in under it: it works on cache-sized row blocks, where GEMM only streams N×h products "
        "through memory, and on large inputs it runs stripes of rows on all cores with the "
        "BLAS single-threaded, so the elementwise work is parallel too. Between timed calls "
        "the contenders rest 0.2 s, so that BLAS threads left spinning by one do not slow "
        "the next."
    )
    return markdown_section(
        "Training epoch: ours against the peers", method, table(HEADERS, table_rows)
    )
