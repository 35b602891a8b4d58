"""Weights on disk: an .npz with float arrays W1 (d × hidden) and W2 (hidden × k), never pickled.
Every member's .npy header is read, and its size checked against the zip entry's declared size,
before any array data is inflated: a small compressed archive can claim gigabytes."""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnexp.errors import UserError
from nnexp.run import memory
from nnexp.safety.files import regular_file

ZIP_MAGIC = b"PK\x03\x04"
HOW_TO_SAVE = "save it with numpy.savez(path, W1=W1, W2=W2)"
#: The fix for a run's stored weights that fail a check.
STORED_FIX = "the stored file is damaged or was replaced; train the run again"
PICKLED = "holds pickled objects, which nnexp never loads; save float arrays"
#: The failures of reading a damaged archive (a bad zip, bad deflate data, a CRC mismatch).
CORRUPT = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class Member:
    """One array of an .npz as its header declares it: zip entry, header length, shape, dtype."""

    entry: zipfile.ZipInfo
    header_bytes: int
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        """Bytes of the array's data: prod(shape) × itemsize."""
        return math.prod(self.shape) * self.dtype.itemsize

    def check_size(self, where: str, fix: str) -> None:
        """The zip entry must declare exactly header + data bytes: zipfile never inflates past
        the declared size, so the data read cannot be larger than the header says."""
        expected = self.header_bytes + self.nbytes
        if self.entry.file_size != expected:
            raise UserError(
                f"{where}: member {self.entry.filename!r} declares {self.entry.file_size} bytes "
                f"but its header says {expected} ({self.dtype} array of shape {self.shape}); {fix}"
            )


def _member(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, where: str, fix: str) -> Member:
    """The header of one member, read without inflating its data; pickles refused."""
    with archive.open(entry) as handle:
        try:
            version = np.lib.format.read_magic(handle)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read(handle)
        except ValueError:
            raise UserError(
                f"{where}: member {entry.filename!r} is not a .npy array; {fix}"
            ) from None
        offset = handle.tell()
    if dtype.hasobject:
        raise UserError(f"{where} {PICKLED}")
    return Member(entry, offset, tuple(shape), dtype)


def read_members(path: Path, where: str, fix: str = HOW_TO_SAVE) -> dict[str, Member]:
    """Every array's header, by name (``W1`` and ``W1.npy`` alike), before any data is read;
    a check that fails is a UserError naming ``where`` and ending with ``fix``."""
    regular_file(path, where)
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as err:
        raise UserError(f"{where} cannot be read ({err.strerror})") from None
    if magic != ZIP_MAGIC:
        raise UserError(f"{where} is not an .npz archive; {fix}")
    members: dict[str, Member] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for entry in archive.infolist():
                name = entry.filename.removesuffix(".npy")
                if name in members:
                    raise UserError(f"{where} holds {name} twice; {fix}")
                members[name] = _member(archive, entry, where, fix)
    except CORRUPT as err:
        raise UserError(f"{where} is truncated or corrupt ({err}); {fix}") from None
    return members


def read_arrays(
    path: Path, where: str, members: dict[str, Member], fix: str = HOW_TO_SAVE
) -> dict[str, np.ndarray]:
    """The data of ``members`` (checked by ``read_members``), pickles refused."""
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {}
            for name, member in members.items():
                with archive.open(member.entry) as handle:
                    arrays[name] = np.lib.format.read_array(handle, allow_pickle=False)
    except CORRUPT as err:
        raise UserError(f"{where} is truncated or corrupt ({err}); {fix}") from None
    return arrays


def _require(members: dict[str, Member], where: str, fix: str) -> None:
    missing = [name for name in ("W1", "W2") if name not in members]
    if missing:
        raise UserError(
            f"{where} has arrays {sorted(members)} but lacks {', '.join(missing)}; {fix}"
        )


def load_weights(path: Path, d: int, hidden: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Read and check an .npz of initial weights for a d-hidden-k network; pickles are refused,
    shapes and dtypes are checked from the headers before any data is read."""
    where = f"model.init_weights={path}"
    members = read_members(path, where)
    _require(members, where, HOW_TO_SAVE)
    wanted = {"W1": (d, hidden), "W2": (hidden, k)}
    for name, shape in wanted.items():
        member = members[name]
        if not np.issubdtype(member.dtype, np.floating):
            raise UserError(
                f"{where}: {name} has dtype {member.dtype}; save float arrays "
                f"({name}.astype(float))"
            )
        if member.shape != shape:
            raise UserError(
                f"{where}: {name} has shape {member.shape} but this run needs {shape} "
                f"(inputs {d}, model.hidden={hidden}, outputs {k})"
            )
        member.check_size(where, HOW_TO_SAVE)
    arrays = read_arrays(path, where, {name: members[name] for name in wanted})
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            raise UserError(f"{where}: {name} contains NaN or inf; save finite weights")
    return arrays["W1"].astype(np.float64), arrays["W2"].astype(np.float64)


def check_stored_weights(path: Path, where: str, hidden: int | None) -> dict[str, Member]:
    """The headers of a run's stored weights.npz: W1 (…, d, hidden) and W2 (…, hidden, k) of
    numbers (``hidden`` checked when given), every array together small enough for the memory
    free now."""
    members = read_members(path, where, STORED_FIX)
    _require(members, where, STORED_FIX)
    for name, member in members.items():
        if member.dtype.kind not in "biuf":
            raise UserError(f"{where}: {name} has dtype {member.dtype}, not numbers; {STORED_FIX}")
        member.check_size(where, STORED_FIX)
    W1, W2 = members["W1"].shape, members["W2"].shape
    fits = len(W1) >= 2 and len(W2) >= 2 and W1[-1] == W2[-2]
    if not fits or (hidden is not None and W1[-1] != hidden):
        network = "each other" if hidden is None else f"a network of model.hidden={hidden}"
        raise UserError(f"{where}: W1 {W1} and W2 {W2} do not fit {network}; {STORED_FIX}")
    memory.require(
        sum(member.nbytes for member in members.values()),
        f"reading {where}",
        f"{STORED_FIX}, or free memory",
    )
    return members


def read_stored_weights(path: Path, where: str) -> dict[str, np.ndarray]:
    """Every array of a run's stored weights.npz, once ``check_stored_weights`` passes."""
    return read_arrays(path, where, check_stored_weights(path, where, None), STORED_FIX)
