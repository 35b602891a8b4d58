"""The folders a run or sweep writes into, taken before Hydra writes anything there, so that no
file nnexp did not write is overwritten: a folder is taken when it is new or empty, and marked
(``.nnexp-output``) as nnexp's. A run or sweep whose folder is another's (two started in the
same second, or the same ``hydra.run.dir`` or ``hydra.sweep.dir`` again) gets the next free
``NAME_1``, ``NAME_2`` … beside it; a folder holding anything else is refused with one line."""

from __future__ import annotations

import shutil
from pathlib import Path

from nnexp.errors import UserError
from nnexp.tracking.sweep_file import SWEEP_FILE

MARK = ".nnexp-output"
#: How many ``NAME_N`` folders a run tries beside a taken one before giving up.
MAX_SUFFIX = 1000


def take_run_dir(wanted: Path) -> Path:
    """The folder a single run writes into: ``wanted`` if it is new or empty, else the first free
    ``wanted_N`` when ``wanted`` is another nnexp folder; created and marked atomically, so two
    runs never share one. UserError if ``wanted`` holds files nnexp did not write."""
    return _first_free(wanted, "hydra.run.dir", {MARK})


def take_sweep_dir(wanted: Path) -> Path:
    """The folder a sweep writes into, taken as ``take_run_dir`` takes a run's (a resumed sweep
    finds its parent run in the store, not by its folder)."""
    return _first_free(wanted, "hydra.sweep.dir", {MARK, SWEEP_FILE})


def _first_free(wanted: Path, key: str, ours: set[str]) -> Path:
    """``wanted``, or the first ``wanted_N`` beside it, that this process could take."""
    for n in range(MAX_SUFFIX):
        folder = wanted if n == 0 else wanted.with_name(f"{wanted.name}_{n}")
        if _take(folder, key, ours):
            return folder
    raise UserError(f"{MAX_SUFFIX} folders already taken beside {wanted}; set {key} to a new one")


def _take(folder: Path, key: str, ours: set[str]) -> bool:
    """Create (if new) and mark ``folder`` as this process's: True; False if it was already
    marked. UserError if it is not a folder, or holds entries but none of ``ours`` (the names
    that show nnexp wrote there)."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            if folder.is_symlink() or not folder.is_dir():
                raise UserError(
                    f"{key} {folder} is not a folder; point {key} at a new folder"
                ) from None
            entries = {p.name for p in folder.iterdir()}
            if entries and not entries & ours:
                raise _foreign(folder, key) from None
        with (folder / MARK).open("x"):
            return True
    except FileExistsError:
        return False
    except OSError as err:
        raise UserError(
            f"cannot create {key} {folder} ({err.strerror or err}); launch from a folder you can "
            f"write, or point {key} at one"
        ) from None


def _foreign(folder: Path, key: str) -> UserError:
    names = sorted(p.name for p in folder.iterdir())
    return UserError(
        f"{key} {folder} holds files nnexp did not write ({', '.join(names[:3])}"
        f"{', …' if len(names) > 3 else ''}); point {key} at a new or empty folder"
    )


def discard_unused_output(output_dir: Path, launch_dir: Path) -> None:
    """Remove the folder of a run rejected as bad input when it holds only what Hydra and nnexp
    wrote before the job (.hydra/, the job's log, the folder's mark), and the parents that
    leaves empty, up to the launch folder."""
    if not output_dir.is_dir() or launch_dir not in output_dir.parents:
        return
    kept = (".hydra", MARK)
    if any(p.name not in kept and p.suffix != ".log" for p in output_dir.iterdir()):
        return
    shutil.rmtree(output_dir, ignore_errors=True)
    for parent in output_dir.parents:
        if parent == launch_dir or any(parent.iterdir()):
            break
        parent.rmdir()
