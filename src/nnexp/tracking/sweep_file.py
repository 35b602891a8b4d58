"""A tracked sweep's claim on its folder: the sweep file (``.nnexp_sweep.json``), created empty
before anything is imported from MLflow or logged, so a folder another sweep already claimed
(one taken before folders were marked, see ``run.folders``) is refused at once; filled by
``tracking.sweep.SweepInfo.save`` once the parent run exists. And the sweep's stop marker
(``.nnexp_stop``), which every job looks for before it starts."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from nnexp.errors import UserError
from nnexp.signals import stop_exception

SWEEP_FILE = ".nnexp_sweep.json"


def claim(sweep_dir: Path) -> None:
    """Create the sweep file empty; UserError if another sweep already writes into the folder."""
    try:
        (sweep_dir / SWEEP_FILE).open("x").close()
    except FileExistsError:
        raise UserError(
            f"another sweep already writes into {sweep_dir}; set hydra.sweep.dir to a new folder"
        ) from None


def release(sweep_dir: Path) -> None:
    """Remove this sweep's claim (its parent could not be opened)."""
    (sweep_dir / SWEEP_FILE).unlink(missing_ok=True)


#: Written by the launching process when a stop signal reaches it: no job starts after that.
STOP_FILE = ".nnexp_stop"


def mark_stopped(sweep_dir: Path, signum: int) -> None:
    """Note in the sweep's folder that the sweep is stopping (best effort: called in a signal
    handler, and a folder that cannot be written must not hide the signal)."""
    with contextlib.suppress(OSError):
        (sweep_dir / STOP_FILE).write_text(str(int(signum)))


def clear_stop(sweep_dir: Path) -> None:
    """Forget a stop left by an earlier invocation of the sweep (before a resume)."""
    (sweep_dir / STOP_FILE).unlink(missing_ok=True)


def stop_signal(sweep_dir: Path) -> int | None:
    """The signal that stopped the sweep, or None while it runs."""
    try:
        text = (sweep_dir / STOP_FILE).read_text()
    except OSError:
        return None
    return int(text) if text.strip().isdigit() else signal.SIGTERM


def refuse_after_stop(sweep_dir: Path) -> None:
    """At a sweep job's start: raise the stop (KeyboardInterrupt or Terminated) if its sweep is
    stopping, so no job starts after the interrupt, whichever process the launcher runs it in."""
    signum = stop_signal(sweep_dir)
    if signum is not None:
        raise stop_exception(signum)
