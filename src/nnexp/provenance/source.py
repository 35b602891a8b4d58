"""Where a result came from: the code's git commit and dirty state, package versions, host."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("nnexp", "numpy", "mlflow", "hydra-core")
SOURCE_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CodeVersion:
    """The git commit of nnexp's source tree, whether it had uncommitted changes, and their hash."""

    commit: str
    dirty: bool
    diff_hash: str

    def label(self) -> str:
        """``<commit>`` or ``<commit>+dirty.<hash of the diff>``: equal labels, equal code."""
        return f"{self.commit}+dirty.{self.diff_hash}" if self.dirty else self.commit


#: git's whole environment: the PATH nnexp was started with (read at import, before any config
#: is composed), no other variable of the user's or a job's (GIT_*, HOME, XDG_CONFIG_HOME), no
#: system or global config file; only the repository's own .git/config applies.
GIT_ENV = {
    "PATH": os.environ.get("PATH", os.defpath),
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
    "LC_ALL": "C",
}
#: Settings that would make git run a program, turned off whatever the repository's config says.
GIT_SAFE = (
    "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "diff.external=",
    "-c", "core.pager=cat", "-c", "core.sshCommand=false",
)  # fmt: skip


def _git(*args: str) -> str | None:
    """git's output in nnexp's source folder, run with ``GIT_ENV`` and ``GIT_SAFE``."""
    program = shutil.which("git", path=GIT_ENV["PATH"])
    if program is None:
        return None
    try:
        done = subprocess.run(
            [program, *GIT_SAFE, *args],
            cwd=SOURCE_DIR,
            env=GIT_ENV,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


@cache
def code_version() -> CodeVersion:
    """The commit of the checkout nnexp runs from ("unknown" outside git). ``nnexp-train`` asks
    in the launching process before Hydra runs, so no job's environment reaches git."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return CodeVersion("unknown", False, "")
    diff = _git("diff", "--no-ext-diff", "--no-textconv", "HEAD") or ""
    return CodeVersion(commit.strip(), bool(diff), hashlib.sha256(diff.encode()).hexdigest()[:12])


@cache
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide the numbers."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def blas_threads() -> int:
    """Threads the BLAS library may use in this process (joblib workers get a share of cores)."""
    from threadpoolctl import threadpool_info

    return max(
        (pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=1
    )


def host() -> str:
    """This machine's name, as recorded with a run for `nnexp runs repair`."""
    return socket.gethostname()


def process_alive_since(pid: int, started_ms: int) -> bool | None:
    """Whether process ``pid`` on this machine exists and started no later than ``started_ms``
    (so it is the one that opened a run then, not a later process that reused the pid).
    None where this cannot be told (no /proc)."""
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc/self/stat").exists():
        return None
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    boot_s = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime")
    )
    start_s = boot_s + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return start_s * 1000 <= started_ms + 1000
