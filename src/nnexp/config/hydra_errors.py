"""Hydra's and OmegaConf's errors about a command line or config, as one line with the fix."""

from __future__ import annotations

import re

from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf.errors import OmegaConfBaseException

from nnexp.errors import first_line

HYDRA_ERRORS = (HydraException, OmegaConfBaseException)
KEYS_HINT = "`nnexp-train --cfg job` prints every key"
#: What OmegaConf says of a value of the wrong type, and what to pass instead.
TYPE_HINTS = {
    "converted to Integer": "pass a whole number",
    "converted to Float": "pass a number",
    "not a valid bool": "pass true or false",
}


def hydra_error_line(err: BaseException) -> str:
    """One line: what was wrong on the command line or in the config, and what to do."""
    text = str(err)
    cause = first_line(err.__cause__) if err.__cause__ is not None else ""
    missing = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if isinstance(err, MissingConfigException) and missing:
        group, option = missing.groups()
        return f"unknown {group} option {option!r}; choose one of: {', '.join(_options(text))}"
    if isinstance(err, OverrideParseException):
        return f"cannot read the override {err.override}: {' '.join(text.split())}"
    if text.startswith("Could not override"):
        key = re.search(r"Could not override '([^']+)'", text).group(1)
        return f"{key} is not a config key here ({cause}); check the spelling: {KEYS_HINT}"
    if text.startswith("Error merging override"):
        override = text.splitlines()[0][len("Error merging override ") :]
        return f"{override}: {cause}{_hint(cause)}"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _options(text: str) -> list[str]:
    block = text.split("Available options in", 1)[-1].split("Config search path", 1)[0]
    return [line.strip() for line in block.splitlines()[1:] if line.strip()]


def _hint(cause: str) -> str:
    for phrase, hint in TYPE_HINTS.items():
        if phrase in cause:
            return f"; {hint}"
    if "does not support deletion" in cause:
        return "; every key needs a value: set it instead of deleting it"
    return ""
