"""Writing a report's folder all at once: it is built in a temporary folder beside the output,
published (logged to MLflow), then renamed into place, so a failure leaves nothing half-written.
An existing output folder is replaced only if it holds nothing but a report's own files."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from nnexp.errors import UserError

REPORT_FILES = ("report.md", "report.html")
FIGURES_DIR = "figures"


def check_replaceable(out: Path) -> None:
    """Refuse an output that is a file, or a folder holding anything but a previous report."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"--out {out} is not a folder; name a folder for the report")
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UserError(f"cannot write the report into {out}: {blocker} is a file, not a folder")
    if not out.is_dir():
        return
    foreign = [p.name for p in out.iterdir() if p.name not in (*REPORT_FILES, FIGURES_DIR)]
    figures = out / FIGURES_DIR
    if figures.is_dir():
        foreign += [f"{FIGURES_DIR}/{p.name}" for p in figures.iterdir() if p.suffix != ".png"]
    if foreign:
        raise UserError(
            f"--out {out} holds files that are not a report's ({', '.join(sorted(foreign)[:3])}); "
            "choose an empty or new folder"
        )


def write_atomically(
    out: Path, render: Callable[[Path], None], publish: Callable[[Path], None]
) -> None:
    """``render`` into a fresh folder, ``publish`` it, then move it to ``out`` (replacing a
    previous report there). On any failure the temporary folder is removed and ``out`` kept."""
    check_replaceable(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as err:
        raise _unwritable(out, err) from None
    try:
        work.chmod(0o755)
        render(work)
        publish(work)
        _swap(work, out)
    except OSError as err:
        raise _unwritable(out, err) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _swap(work: Path, out: Path) -> None:
    if not out.exists():
        work.rename(out)
        return
    old = work.with_suffix(".old")
    out.rename(old)
    try:
        work.rename(out)
    except OSError:
        old.rename(out)
        raise
    shutil.rmtree(old)


def _unwritable(out: Path, err: OSError) -> UserError:
    return UserError(
        f"cannot write the report into {out}: {err.strerror or err}; choose a writable --out"
    )
