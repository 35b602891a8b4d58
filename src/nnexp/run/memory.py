"""What a run's arrays need, from its declared sizes, against the memory this machine has free:
checked before anything is allocated, so a size that cannot fit is one line with the bytes."""

from __future__ import annotations

import os
from pathlib import Path

from nnexp.errors import UserError

#: Float64 bytes, and how many copies of the data loading makes (drawn, shuffled, scaled, cast).
FLOAT = 8
DATA_COPIES = 4


def available_bytes() -> int:
    """Memory free for a new process: MemAvailable, else the physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def human(size: float) -> str:
    """1.5 GB, 20 MB, 3 kB."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.3g} {unit}"
        size /= 1000
    return f"{size:.3g} PB"


def require(needed: int, what: str, fix: str) -> None:
    """UserError when ``needed`` bytes exceed the memory free now."""
    free = available_bytes()
    if needed > free:
        raise UserError(
            f"{what} needs about {human(needed)} of memory, more than the {human(free)} free "
            f"here; {fix}"
        )


def dataset_bytes(spec: dict) -> int:
    """The generated datasets' arrays (n rows of d inputs and k outputs), 0 for the others."""
    columns = {"sine": 2, "synthetic": spec.get("d", 0) + spec.get("k", 0)}.get(spec["name"], 0)
    return DATA_COPIES * FLOAT * spec.get("n", 0) * columns


def training_bytes(
    rows: int,
    d: int,
    hidden: int,
    k: int,
    seeds: int,
    batch: int | None,
    itemsize: int,
    optimizer_state: int = 0,
) -> int:
    """Weights with their gradients and updates and the optimizer's ``optimizer_state`` buffers
    (velocities: ``Optimizer.state``), and each copy's activations and deltas for a batch (or the
    whole training or test set) of ``rows``."""
    weights = (4 + optimizer_state) * seeds * (d * hidden + hidden * k)
    batch_rows = rows if batch is None else min(batch, rows)
    activations = 3 * seeds * max(batch_rows, rows) * (hidden + k)
    return itemsize * (weights + activations)
