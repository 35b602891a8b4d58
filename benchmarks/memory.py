"""Peak memory of training on the largest shape, measured in a fresh process per run.

``python -m benchmarks.memory EPOCHS DTYPE N`` is the probe: its resident set after the imports
and a small warm-up run is the baseline; it makes the data, restarts the kernel's peak count,
trains, and prints JSON with the peak resident set during training (Linux's VmHWM) and the peak
of the allocations tracemalloc traced during training (numpy reports its buffers to it).
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np

from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table, verdict

#: Most the peak may exceed the baseline by, in dataset sizes.
DATASET_FACTOR = 2.0
MIB = 1 << 20
#: Rows of the one-epoch warm-up that brings up the worker threads and the BLAS buffers (enough
#: for full-size row blocks, so the BLAS touches as much of its buffers as in the real run).
WARM_UP_ROWS = 10_000

HEADERS = (
    "training run | dataset | baseline RSS | peak RSS in training"
    " | (peak − baseline) / dataset | target | traced peak in training"
)


def current_rss() -> int:
    """This process's resident set now, in bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()


def peak_rss() -> int:
    """This process's peak resident set since start or the last ``reset_peak_rss``, in bytes."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def reset_peak_rss() -> None:
    """Start the peak resident set afresh from the current one (Linux's clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def probe(epochs: int, dtype: str, n_rows: int) -> dict[str, float]:
    """Train ``epochs`` epochs on synthetic n_rows×100→256→1 data; the memory figures in bytes."""
    from benchmarks import workloads

    workloads.ours(workloads.synthetic(n=WARM_UP_ROWS, dtype=np.dtype(dtype)), 1)()
    baseline = current_rss()
    problem = workloads.synthetic(n=n_rows, dtype=np.dtype(dtype))
    run = workloads.ours(problem, epochs)
    reset_peak_rss()
    tracemalloc.start()
    run()
    traced = tracemalloc.get_traced_memory()[1]
    return {"baseline": baseline, "dataset": problem.nbytes, "peak": peak_rss(), "traced": traced}


def measure(epochs: int, dtype: str, n_rows: int) -> dict[str, float]:
    """``probe`` in a fresh interpreter, so no earlier allocation sets its peak."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", str(epochs), dtype, str(n_rows)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout)


def section(quick: bool) -> str:
    """Per dtype and epoch count: baseline, peak and their difference in dataset sizes."""
    n_rows, epoch_counts = (20_000, (2, 5)) if quick else (100_000, (2, 20))
    rows = []
    for dtype in ("float64", "float32"):
        for epochs in epoch_counts:
            m = measure(epochs, dtype, n_rows)
            factor = (m["peak"] - m["baseline"]) / m["dataset"]
            rows.append(
                [
                    f"{n_rows}×100→256→1 {dtype}, {epochs} epochs",
                    f"{m['dataset'] / MIB:.1f} MiB",
                    f"{m['baseline'] / MIB:.1f} MiB",
                    f"{m['peak'] / MIB:.1f} MiB",
                    f"{factor:.2f}",
                    verdict(factor <= DATASET_FACTOR, f"≤ {DATASET_FACTOR:g}"),
                    f"{m['traced'] / MIB:.2f} MiB",
                ]
            )
    method = (
        "Each row is a fresh Python process. Its resident set after the imports and a one-epoch "
        f"warm-up on {WARM_UP_ROWS} rows (which brings up the worker threads and the BLAS "
        "buffers; that data is freed again) is the baseline. It then makes the synthetic data "
        "(X and y: the dataset), restarts the kernel's peak count (`/proc/self/clear_refs`), "
        "trains with `core.train` (full batch, no test set, cost recorded every epoch) and "
        "reads the peak resident set of the training (VmHWM). The last column is the peak of "
        "the allocations tracemalloc traced during training (numpy reports its buffers to it): "
        "workspace and cost history. Equal peaks after few and many epochs: nothing grows "
        "with the epochs."
    )
    return markdown_section("Memory", method, table(HEADERS, rows))


if __name__ == "__main__":
    epochs_arg, dtype_arg, n_rows_arg = sys.argv[1:4]
    print(json.dumps(probe(int(epochs_arg), dtype_arg, int(n_rows_arg))))
