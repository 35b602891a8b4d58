"""The results file: a header, then each section between markers, so one section can be rerun
and replaced without touching the others."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence

MARKER = re.compile(r"<!-- section (\w+) -->\n(.*?)<!-- end \1 -->\n", re.DOTALL)


def stamp(body: str, commit: str, load_before: str, load_after: str) -> str:
    """The section followed by when and at which commit it ran, and the load around it."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{body}\n_Measured {now} at nnexp {commit}; load average {load_before} before, "
        f"{load_after} after._\n"
    )


def sections(text: str) -> dict[str, str]:
    """The sections of a results file by name."""
    return {match.group(1): match.group(2) for match in MARKER.finditer(text)}


def merge(existing: str, header: str, measured: Mapping[str, str], order: Sequence[str]) -> str:
    """The new results file: the sections in ``order``, measured ones replacing those of
    ``existing``, the rest kept as they were. The header is the new one, unless sections of
    ``existing`` survive: a partial rerun keeps the header of the run it updates (each section
    carries its own date and commit)."""
    bodies = {**sections(existing), **measured}
    names = [name for name in order if name in bodies]
    names += [name for name in bodies if name not in names]
    if set(names) != set(measured):
        header = existing.split("<!-- section ", 1)[0].rstrip("\n") + "\n"
    blocks = [f"<!-- section {name} -->\n{bodies[name]}<!-- end {name} -->\n" for name in names]
    return header + "\n" + "\n".join(blocks)
