"""``model.deterministic=true``: a run whose bits any x86-64 CPU able to run this numpy can
reproduce. Its process computes on a baseline (``machine.baseline_environment``: OpenBLAS's
Nehalem kernel, numpy's baseline loops), set before numpy loads by restarting ``nnexp-train``,
and its BLAS runs one thread while it builds its data and trains, so no reduction depends on the
thread count (the core's own stripes are fixed by the shapes, ``nnexp.core.workspace``)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from nnexp.errors import UserError
from nnexp.provenance import machine

#: The override, as typed (``model.deterministic=true``, ``+model.deterministic=yes``, a sweep's
#: ``model.deterministic=true,false``); group 1 is the value.
OVERRIDE = re.compile(r"^[+~]*model\.deterministic=(.*)$")
TRUE_WORDS = {"true", "yes", "on", "y", "1"}


def requested(arguments: Sequence[str]) -> bool:
    """Whether the command line sets model.deterministic true for any of its jobs."""
    values = [found.group(1) for found in map(OVERRIDE.match, arguments) if found]
    return any(TRUE_WORDS & {word.lower() for word in re.findall(r"\w+", v)} for v in values)


def pin_process(arguments: Sequence[str]) -> None:
    """Restart this process on the baseline when ``arguments`` ask for a deterministic run and
    it does not compute on it yet (call before training; returns when nothing is to be done)."""
    if requested(arguments) and not machine.at_baseline(machine.this_machine()):
        machine.restart_with(machine.baseline_environment(machine.this_machine(), os.environ))


def check(cfg: DictConfig) -> None:
    """Refuse a deterministic run in a process not on the baseline (the option came from a
    config file, after numpy had loaded)."""
    if cfg.model.get("deterministic") and not machine.at_baseline(machine.this_machine()):
        here = machine.this_machine()
        raise UserError(
            f"model.deterministic=true needs OpenBLAS's {machine.BASELINE_KERNEL} kernel and "
            f"numpy's baseline loops before numpy loads (here: kernel {here.blas_kernel}, loops "
            f"{here.numpy_simd or 'baseline'}): pass model.deterministic=true on the nnexp-train "
            "command line, which restarts it so"
        )


def training_threads(on: bool) -> AbstractContextManager:
    """One BLAS thread while a deterministic run (``on``) builds its data and trains (a
    dataset drawn with a matrix product, as ``synthetic``, depends on the thread count too); else
    nothing changes."""
    if on:
        return threadpool_limits(limits=1, user_api="blas")
    return nullcontext()
