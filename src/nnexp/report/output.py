"""Writing a report's folder all at once: it is built in a temporary folder beside the output,
published (logged to MLflow), then renamed into place, so a failure leaves nothing half-written.

An existing output folder is replaced only if nnexp wrote everything in it: its manifest
(``.nnexp-report.json``, every file with its SHA-256) lists exactly the files there, unchanged.
A folder from before manifests is replaced only if it holds regular files ``report.md``,
``report.html`` and ``figures/*.png`` and nothing else. The folder keeps its permissions."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from nnexp.errors import UserError

REPORT_FILES = ("report.md", "report.html")
FIGURES_DIR = "figures"
MANIFEST = ".nnexp-report.json"


def check_replaceable(out: Path) -> None:
    """Refuse an output that is a file, the working folder or one of its parents, a mount point,
    or a folder holding anything nnexp did not write there."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"--out {out} is not a folder; name a folder for the report")
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UserError(f"cannot write the report into {out}: {blocker} is a file, not a folder")
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents or os.path.ismount(out):
        raise UserError(
            f"--out {out} is the working folder, one of its parents or a mount point, which "
            "cannot be replaced; name a new folder, e.g. --out reports/NAME"
        )
    if not out.is_dir():
        return
    foreign = _not_written_by_nnexp(out)
    if foreign:
        raise UserError(
            f"--out {out} holds files nnexp did not write there ({', '.join(foreign[:3])}); "
            "choose an empty or new folder"
        )


def _not_written_by_nnexp(out: Path) -> list[str]:
    """Entries of ``out`` (relative, sorted) that its manifest does not vouch for."""
    found = sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir() or p.is_symlink()
    )
    manifest = out / MANIFEST
    if manifest.is_file() and not manifest.is_symlink():
        try:
            listed = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return [MANIFEST]
        return [
            name for name in found if name != MANIFEST and listed.get(name) != _digest(out / name)
        ] + sorted(set(listed) - set(found))
    figure = f"{FIGURES_DIR}/"
    return [
        name
        for name in found
        if not _regular(out / name)
        or not (
            name in REPORT_FILES
            or (name.startswith(figure) and name.endswith(".png") and name.count("/") == 1)
        )
    ]


def _regular(path: Path) -> bool:
    return stat.S_ISREG(path.lstat().st_mode)


def _digest(path: Path) -> str | None:
    if not _regular(path):
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_manifest(work: Path) -> None:
    files = {str(p.relative_to(work)): _digest(p) for p in sorted(work.rglob("*")) if p.is_file()}
    (work / MANIFEST).write_text(json.dumps({"files": files}, indent=1, sort_keys=True) + "\n")


def _folder_mode(out: Path) -> int:
    """The mode of the folder being replaced, else 0777 less the umask."""
    if out.is_dir():
        return stat.S_IMODE(out.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def write_atomically(
    out: Path, render: Callable[[Path], None], publish: Callable[[Path], None]
) -> None:
    """``render`` into a fresh folder, ``publish`` it, then move it to ``out`` (replacing a
    previous report there). On any failure the temporary folder is removed and ``out`` kept."""
    check_replaceable(out)
    mode = _folder_mode(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as err:
        raise _unwritable(out, err) from None
    try:
        render(work)
        publish(work)
        _write_manifest(work)
        work.chmod(mode)
        _swap(work, out)
    except OSError as err:
        raise _unwritable(out, err) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _swap(work: Path, out: Path) -> None:
    """Move ``work`` to ``out``. What is at ``out`` now is checked again, once moved aside where
    nothing else writes: a folder or file that appeared or changed while the report rendered is
    put back untouched and the report refused, so only what nnexp wrote is ever removed."""
    if not out.exists() and not out.is_symlink():
        work.rename(out)
        return
    check_replaceable(out)
    old = work.with_suffix(".old")
    out.rename(old)
    foreign = _not_written_by_nnexp(old)
    if foreign:
        old.rename(out)
        raise UserError(
            f"--out {out} changed while the report rendered ({', '.join(foreign[:3])}); "
            "nothing was replaced; choose an empty or new folder"
        )
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
