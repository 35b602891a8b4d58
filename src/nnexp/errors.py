"""Errors a user can act on: shown as one line with the fix, never as a traceback."""


class UserError(Exception):
    """Bad input: a config value, a file or a store the user named. The message says the fix."""


class TrainingDiverged(UserError):
    """The cost stopped being finite: the learning rate (or the data's scale) is too large."""
