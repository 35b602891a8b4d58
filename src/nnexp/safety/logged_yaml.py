"""Reading a YAML file nnexp wrote earlier (a run's logged config.yaml) as plain data: a regular
file of bounded size, UTF-8, no aliases (an alias bomb expands exponentially), a mapping at the
top, and no ``${…}`` interpolation anywhere (nnexp logs configs resolved, so one is an edit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from nnexp.errors import UserError
from nnexp.safety.files import regular_file

#: The largest YAML file read: a logged config is a few kB.
MAX_BYTES = 1_000_000


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """The mapping in ``path``; UserError naming ``what`` and the problem otherwise."""
    regular_file(path, what, max_bytes=MAX_BYTES)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(
            f"{what} is not UTF-8 text (byte {err.start}); it was not written by nnexp"
        ) from None
    try:
        events = yaml.parse(text, yaml.SafeLoader)
        if any(isinstance(event, yaml.AliasEvent) for event in events):
            raise UserError(f"{what} uses YAML aliases (*name), which nnexp never writes")
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = " ".join(str(err).split())
        raise UserError(f"{what} is not valid YAML ({problem[:200]})") from None
    if not isinstance(loaded, dict):
        raise UserError(f"{what} holds a {type(loaded).__name__}, not a mapping of config keys")
    for key, value in _strings(loaded, ""):
        if "${" in value:
            raise UserError(
                f"{what} has an interpolation at {key} ({value[:80]!r}); nnexp logs configs "
                "resolved, so the file was edited: nothing in it is resolved"
            )
    return loaded


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}".lstrip("."))
            if isinstance(key, str):
                yield path or "the top", key
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node
