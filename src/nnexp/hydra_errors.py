"""Hydra's and OmegaConf's errors about a command line or config, as one line with the fix."""

from __future__ import annotations

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

HYDRA_ERRORS = (HydraException, OmegaConfBaseException)


def hydra_error_line(err: BaseException) -> str:
    """The informative parts of a multi-line Hydra message, joined into one line."""
    text = str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines) if lines else type(err).__name__
