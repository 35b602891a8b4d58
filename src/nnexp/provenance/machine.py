"""What decides a run's bits besides its config and code: the architecture, the BLAS library, its
version and kernel, numpy's version and the SIMD loops it dispatched to, and the usable CPUs.

The BLAS's thread count is recorded apart (``nnexp.blas_threads``). A run records the rest as
tags (``Machine.tags``); ``nnexp reproduce`` reads them back (``Machine.from_tags``), pins what
can be pinned before numpy loads (``pinned_environment``, ``restart_with``) and names what could
not be (``differences``). ``model.deterministic=true`` pins a baseline that every CPU able to run
this numpy has (``baseline_environment``).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

from nnexp.core.parallel import usable_cpus

#: Tag prefix of the record: nnexp.machine.<field>.
TAG_PREFIX = "nnexp.machine."

#: OpenBLAS's kernel: a DYNAMIC_ARCH build uses this one instead of the one it detects.
KERNEL_VARIABLE = "OPENBLAS_CORETYPE"
#: numpy's dispatched SIMD targets listed here are not used (numpy ≥ 1.20).
NUMPY_DISABLE_VARIABLE = "NPY_DISABLE_CPU_FEATURES"

#: /proc/cpuinfo flags each x86-64 OpenBLAS kernel needs, by the name threadpoolctl reports and
#: OPENBLAS_CORETYPE accepts (a kernel's instructions on a CPU without them would crash the
#: process, so only a kernel listed here is pinned). numpy's OpenBLAS reports the kernels it lacks
#: as the one it runs: Katmai (generic SSE2) for Prescott to Dunnington, Haswell for Zen.
KERNEL_FLAGS: dict[str, frozenset[str]] = {
    "Katmai": frozenset({"sse2"}),
    "Prescott": frozenset({"sse3"}),
    "Core2": frozenset({"ssse3"}),
    "Penryn": frozenset({"sse4_1"}),
    "Dunnington": frozenset({"sse4_1"}),
    "Nehalem": frozenset({"sse4_2", "popcnt"}),
    "Sandybridge": frozenset({"avx"}),
    "Haswell": frozenset({"avx2", "fma"}),
    "Zen": frozenset({"avx2", "fma"}),
    "SkylakeX": frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}),
    "Cooperlake": frozenset({"avx512f", "avx512bw", "avx512vl", "avx512_bf16"}),
    "SapphireRapids": frozenset({"avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16"}),
}

#: ``model.deterministic``'s OpenBLAS kernel: SSE4.2, which numpy ≥ 2.4 requires of an x86-64 CPU
#: anyway (its baseline X86_V2), so any CPU that runs this numpy runs this kernel.
BASELINE_KERNEL = "Nehalem"


@dataclass(frozen=True)
class Machine:
    """The facts that decide the bits of a computation on this process's numpy and BLAS.
    ``numpy_simd`` lists the dispatched targets in use, space-separated, in numpy's order."""

    arch: str
    cpu: str
    blas: str
    blas_version: str
    blas_kernel: str
    numpy: str
    numpy_simd: str
    cpus: str

    def tags(self) -> dict[str, str]:
        """The record as run tags, nnexp.machine.<field>."""
        return {f"{TAG_PREFIX}{field.name}": getattr(self, field.name) for field in fields(self)}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Machine | None:
        """The record a run's tags hold; None for a run made before nnexp recorded it."""
        names = [field.name for field in fields(cls)]
        if not all(f"{TAG_PREFIX}{name}" in tags for name in names):
            return None
        return cls(**{name: tags[f"{TAG_PREFIX}{name}"] for name in names})


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (/proc/cpuinfo; empty where there is none)."""
    info = Path("/proc/cpuinfo")
    if not info.exists():
        return frozenset()
    for line in info.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    return platform.processor() or "unknown"


def numpy_simd() -> list[str]:
    """The SIMD targets numpy dispatches to in this process, beyond its compiled-in baseline:
    those this CPU has and NPY_DISABLE_CPU_FEATURES left on (numpy's public ``show_config``)."""
    return list(np.show_config(mode="dicts")["SIMD Extensions"].get("found", []))


def numpy_blas() -> dict[str, object]:
    """threadpoolctl's entry of the BLAS numpy's own matrix products call: the one numpy ships
    (another, e.g. scipy's, may be loaded beside it), else the first BLAS loaded."""
    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    package = Path(np.__file__).resolve().parent
    owned = (str(package), f"{package}.libs", str(package.parent / "numpy.libs"))
    ours = [pool for pool in pools if str(pool.get("filepath", "")).startswith(owned)]
    return (ours or pools or [{}])[0]


@cache
def this_machine() -> Machine:
    """This process's record."""
    blas = numpy_blas()
    return Machine(
        arch=platform.machine(),
        cpu=cpu_model(),
        blas=str(blas.get("internal_api", "none")),
        blas_version=str(blas.get("version", "")),
        blas_kernel=str(blas.get("architecture", "")),
        numpy=np.__version__,
        numpy_simd=" ".join(numpy_simd()),
        cpus=str(usable_cpus()),
    )


def _disabled(environ: Mapping[str, str]) -> list[str]:
    return environ.get(NUMPY_DISABLE_VARIABLE, "").replace(",", " ").split()


def pinned_environment(
    recorded: Machine, here: Machine, flags: frozenset[str], environ: Mapping[str, str]
) -> dict[str, str]:
    """``environ`` with OpenBLAS's kernel set to the recorded one, where the BLAS, its version
    and the architecture match and this CPU has the kernel's instructions, and numpy's targets
    in use here but not recorded disabled: what a process must start with to compute as the
    recorded one did. Applied to a process started with it, it changes nothing."""
    pinned = dict(environ)
    same_blas = (recorded.arch, recorded.blas, recorded.blas_version) == (
        here.arch,
        here.blas,
        here.blas_version,
    )
    needs = KERNEL_FLAGS.get(recorded.blas_kernel)
    pinnable = same_blas and recorded.blas == "openblas" and needs is not None and needs <= flags
    if pinnable and recorded.blas_kernel != here.blas_kernel:
        pinned[KERNEL_VARIABLE] = recorded.blas_kernel
    if recorded.arch == here.arch:
        already, wanted = _disabled(environ), recorded.numpy_simd.split()
        disabled = already + [
            name for name in here.numpy_simd.split() if name not in wanted + already
        ]
        if disabled:
            pinned[NUMPY_DISABLE_VARIABLE] = " ".join(disabled)
    return pinned


def baseline_environment(here: Machine, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with ``model.deterministic``'s baseline: OpenBLAS's BASELINE_KERNEL (x86-64)
    and every numpy target beyond its baseline disabled."""
    pinned = dict(environ)
    if here.arch in ("x86_64", "AMD64") and here.blas == "openblas":
        pinned[KERNEL_VARIABLE] = BASELINE_KERNEL
    disabled = _disabled(environ)
    disabled += [name for name in here.numpy_simd.split() if name not in disabled]
    if disabled:
        pinned[NUMPY_DISABLE_VARIABLE] = " ".join(disabled)
    return pinned


def at_baseline(here: Machine) -> bool:
    """Whether this process computes on ``model.deterministic``'s baseline."""
    kernel_ok = here.blas != "openblas" or here.arch not in ("x86_64", "AMD64")
    return not here.numpy_simd and (kernel_ok or here.blas_kernel == BASELINE_KERNEL)


def differences(recorded: Machine, here: Machine, flags: frozenset[str]) -> list[str]:
    """One line per fact that decides the bits and differs between the recorded machine and
    this process (after pinning; ``flags``: this CPU's): why bit-identity cannot be expected."""
    found = []
    if recorded.arch != here.arch:
        found.append(f"another architecture: {here.arch} here, {recorded.arch} recorded")
    if recorded.blas != here.blas:
        found.append(f"another BLAS vendor: {here.blas} here, {recorded.blas} recorded")
    elif recorded.blas_version != here.blas_version:
        found.append(
            f"another {here.blas} version: {here.blas_version} here, "
            f"{recorded.blas_version} recorded"
        )
    if recorded.blas_kernel != here.blas_kernel:
        lacks = sorted(KERNEL_FLAGS.get(recorded.blas_kernel, frozenset()) - flags)
        found.append(
            f"{recorded.blas} kernel {here.blas_kernel} here, {recorded.blas_kernel} recorded"
            + (f" (this CPU lacks {' '.join(lacks)})" if lacks else "")
        )
    if recorded.numpy != here.numpy:
        found.append(f"another numpy version: {here.numpy} here, {recorded.numpy} recorded")
    elif recorded.numpy_simd != here.numpy_simd:
        missing = [s for s in recorded.numpy_simd.split() if s not in here.numpy_simd.split()]
        found.append(
            f"numpy's SIMD loops {here.numpy_simd or 'baseline only'} here, "
            f"{recorded.numpy_simd or 'baseline only'} recorded"
            + (f" ({' '.join(missing)} off or not on this CPU)" if missing else "")
        )
    return found


def restart_with(environ: Mapping[str, str]) -> None:
    """Replace this process by a new run of its command line (same pid, so signals reach it)
    under ``environ``, if that differs from this process's environment; else return."""
    if dict(environ) == dict(os.environ):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, dict(environ))
