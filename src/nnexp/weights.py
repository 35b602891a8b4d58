"""Weights on disk: an .npz with float arrays W1 (d × hidden) and W2 (hidden × k), never pickled."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from nnexp.errors import UserError
from nnexp.safe_files import regular_file

ZIP_MAGIC = b"PK\x03\x04"
HOW_TO_SAVE = "save it with numpy.savez(path, W1=W1, W2=W2)"


def _check_headers(path: Path, where: str, d: int, hidden: int, k: int) -> None:
    """Each array's shape and dtype from its .npy header, read before any array data is
    inflated (a small compressed archive can claim gigabytes)."""
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for name, shape in (("W1", (d, hidden)), ("W2", (hidden, k))):
            if f"{name}.npy" not in names:
                continue
            with archive.open(f"{name}.npy") as member:
                version = np.lib.format.read_magic(member)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                found, _, dtype = read(member)
            if dtype.hasobject:
                raise UserError(
                    f"{where} holds pickled objects, which nnexp never loads; save float arrays"
                )
            if found != shape:
                raise UserError(
                    f"{where}: {name} has shape {found} but this run needs {shape} "
                    f"(inputs {d}, model.hidden={hidden}, outputs {k})"
                )


def load_weights(path: Path, d: int, hidden: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Read and check an .npz of initial weights for a d-hidden-k network; pickles are refused."""
    where = f"model.init_weights={path}"
    regular_file(path, where)
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as err:
        raise UserError(f"{where} cannot be read ({err.strerror})") from None
    if magic != ZIP_MAGIC:
        raise UserError(f"{where} is not an .npz archive; {HOW_TO_SAVE}")
    try:
        _check_headers(path, where, d, hidden, k)
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in ("W1", "W2") if name not in archive.files]
            if missing:
                raise UserError(
                    f"{where} has arrays {sorted(archive.files)} but lacks {', '.join(missing)}; "
                    f"{HOW_TO_SAVE}"
                )
            W1, W2 = archive["W1"], archive["W2"]
    except ValueError as err:
        if "pickle" in str(err):
            raise UserError(
                f"{where} holds pickled objects, which nnexp never loads; save float arrays"
            ) from None
        raise UserError(f"{where} is not a readable .npz ({err}); {HOW_TO_SAVE}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise UserError(f"{where} is truncated or corrupt ({err}); {HOW_TO_SAVE}") from None
    for name, array, shape in (("W1", W1, (d, hidden)), ("W2", W2, (hidden, k))):
        if not np.issubdtype(array.dtype, np.floating):
            raise UserError(
                f"{where}: {name} has dtype {array.dtype}; save float arrays ({name}.astype(float))"
            )
        if array.shape != shape:
            raise UserError(
                f"{where}: {name} has shape {array.shape} but this run needs {shape} "
                f"(inputs {d}, model.hidden={hidden}, outputs {k})"
            )
        if not np.isfinite(array).all():
            raise UserError(f"{where}: {name} contains NaN or inf; save finite weights")
    return W1.astype(np.float64), W2.astype(np.float64)
