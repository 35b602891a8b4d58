"""Errors a user can act on: shown as one line with the fix, never as a traceback; and the exit
status every entry point (nnexp-train, nnexp …) gives for the error that ended it."""

from __future__ import annotations

import signal

from nnexp.signals import Terminated


class UserError(Exception):
    """Bad input: a config value, a file or a store the user named. The message says the fix."""


class RunFailed(UserError):
    """A run that started but could not finish for a reason outside nnexp's code."""


class TrainingDiverged(RunFailed):
    """The cost stopped being finite: the learning rate (or the data's scale) is too large."""


class StoreFailed(RunFailed):
    """The tracking store stopped working during a run (a server gone away, a full disk)."""


#: What a command is done with when a run it started failed (diverged, store lost, disk full).
RUN_FAILED = 1
#: Bad input: a UserError, or a command line or config that Hydra or OmegaConf refused.
BAD_INPUT = 2


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (its type's name if it has none)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def unwritable_line(err: OSError) -> str:
    """One line for a file or folder nnexp (or Hydra, making the run's folder) could not write:
    which, why, and where to launch instead."""
    where = f" {err.filename}" if err.filename else ""
    return (
        f"cannot write{where} ({err.strerror or err}); launch from a folder you can write, or "
        "point hydra.run.dir (hydra.sweep.dir with -m) at one"
    )


def exit_code(err: BaseException) -> int:
    """1 for a run that started and failed, 128 + N for signal N (130 Ctrl-C, 143 SIGTERM), 2 for
    any other error a user can act on (bad input)."""
    if isinstance(err, RunFailed):
        return RUN_FAILED
    if isinstance(err, KeyboardInterrupt):
        return 128 + signal.SIGINT
    if isinstance(err, Terminated):
        return 128 + err.signum
    return BAD_INPUT
