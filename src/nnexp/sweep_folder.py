"""A tracked sweep's claim on its folder: the sweep file (``.nnexp_sweep.json``), created empty
before anything is imported from MLflow or logged, so a second sweep into the same folder is
refused at once; filled by ``tracking.sweep.SweepInfo.save`` once the parent run exists."""

from __future__ import annotations

from pathlib import Path

from nnexp.errors import UserError

SWEEP_FILE = ".nnexp_sweep.json"


def claim(sweep_dir: Path) -> None:
    """Create the sweep file empty; UserError if another sweep already writes into the folder."""
    try:
        (sweep_dir / SWEEP_FILE).open("x").close()
    except FileExistsError:
        raise UserError(
            f"another sweep already writes into {sweep_dir}; wait a second or set "
            "hydra.sweep.dir to a new folder"
        ) from None


def release(sweep_dir: Path) -> None:
    """Remove this sweep's claim (its parent could not be opened)."""
    (sweep_dir / SWEEP_FILE).unlink(missing_ok=True)
