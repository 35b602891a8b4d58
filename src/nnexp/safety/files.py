"""Files a user names (data, initial weights) or nnexp reads back (a logged config): checked to be
a regular, readable file of the operating system's file tree before anything opens them, so a
folder, a FIFO (which would block), a device, a kernel file (/proc, /sys) or a file without
read permission gives one line that says what it is."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nnexp.errors import UserError

KERNEL_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))
KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def regular_file(
    path: Path, what: str, max_bytes: int | None = None, error: type[UserError] = UserError
) -> int:
    """The size of ``path`` once it is known to be a regular file the user can read (and at most
    ``max_bytes`` long); otherwise ``error`` naming ``what`` and what the path is."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{what} does not exist; check the path") from None
    except OSError as err:
        raise error(f"{what} cannot be looked at ({err.strerror}); check the path") from None
    kind = next((label for test, label in KINDS if test(info.st_mode)), None)
    if kind is not None:
        raise error(f"{what} is {kind}, not a regular file; pass a file")
    resolved = path.resolve()
    if any(tree == resolved or tree in resolved.parents for tree in KERNEL_TREES):
        raise error(f"{what} is a file of the kernel ({resolved}), not data; pass a file")
    if not os.access(path, os.R_OK):
        raise error(f"{what} is not readable (permission denied); check its permissions")
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(f"{what} is {info.st_size} bytes, more than the {max_bytes} allowed")
    return info.st_size
