"""The header of a results file: the machine, the libraries and the moment of the run."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

from nnexp.core.parallel import usable_cpus

#: Environment variables that change how the BLAS runs.
BLAS_ENVIRONMENT = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
)


def cpu_model() -> str:
    """The CPU's model name, family/model numbers and widest vector extension (/proc/cpuinfo)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return platform.processor() or "unknown"
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = fields.get("flags", "").split()
    vector = next((name for name in ("avx512f", "avx2", "avx", "sse4_2") if name in flags), "")
    return (
        f"{fields.get('model name', 'unknown')} (family {fields.get('cpu family', '?')}, "
        f"model {fields.get('model', '?')}{', ' + vector if vector else ''})"
    )


def cache_sizes() -> str:
    """Per-core L2 and shared L3 sizes as the kernel reports them for CPU 0."""
    sizes = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        level = (index / "level").read_text().strip()
        if level in ("2", "3"):
            sizes.append(f"L{level} {(index / 'size').read_text().strip()}")
    return ", ".join(sizes) or "unknown"


def package_version(name: str) -> str:
    """The installed version of a distribution, or 'not installed'."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def blas() -> str:
    """Each BLAS numpy loaded: implementation, version, architecture, threads."""
    described = [
        f"{lib.get('internal_api')} {lib.get('version')} ({lib.get('architecture')}, "
        f"{lib.get('num_threads')} threads, {lib.get('threading_layer')})"
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    ]
    return "; ".join(described) or "unknown"


#: What a benchmark runs: changes here (not elsewhere in the checkout) mark a run's commit.
MEASURED_PATHS = ("src/nnexp/core", "src/nnexp/data", "benchmarks", ":!benchmarks/results.md")


def git_commit() -> str:
    """The checkout's commit, '+ changes' when the measured code differs from it."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *MEASURED_PATHS],
            check=False,
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{commit or 'unknown'}{' + changes' if dirty else ''}"


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def describe(quick: bool) -> str:
    """The header: title, then one bullet per fact about the machine and the run."""
    np.zeros(1) @ np.zeros(1)  # make sure the BLAS is loaded before threadpoolctl looks
    environment = ", ".join(f"{k}={os.environ[k]}" for k in BLAS_ENVIRONMENT if k in os.environ)
    facts = {
        "Date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Mode": "quick smoke run (`--quick`)" if quick else "full run",
        "CPU": f"{cpu_model()}; {os.cpu_count()} logical CPUs, {usable_cpus()} usable; "
        f"{cache_sizes()}",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "numpy": np.__version__,
        "BLAS": blas(),
        "BLAS environment": environment or "none set",
        "scikit-learn": package_version("scikit-learn"),
        "torch": package_version("torch"),
        "threadpoolctl": package_version("threadpoolctl"),
        "nnexp": git_commit(),
        "Load average at start": load(),
    }
    lines = ["# nnexp benchmarks", ""] + [f"- **{key}**: {value}" for key, value in facts.items()]
    return "\n".join(lines) + "\n"
