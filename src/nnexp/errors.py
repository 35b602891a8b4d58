"""Errors a user can act on: shown as one line with the fix, never as a traceback."""


class UserError(Exception):
    """Bad input: a config value, a file or a store the user named. The message says the fix."""


class RunFailed(UserError):
    """A run that started but could not finish for a reason outside nnexp's code."""


class TrainingDiverged(RunFailed):
    """The cost stopped being finite: the learning rate (or the data's scale) is too large."""


class StoreFailed(RunFailed):
    """The tracking store stopped working during a run (a server gone away, a full disk)."""
