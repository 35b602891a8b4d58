"""Markdown pieces shared by the sections: tables and target verdicts."""

from __future__ import annotations

from collections.abc import Sequence


def table(headers: str, rows: Sequence[Sequence[object]]) -> str:
    """A pipe table: ``headers`` is its header line's cells joined by " | ", the rows' cells are
    formatted with str()."""
    lines = [f"| {headers} |", "|" + "---|" * len(headers.split(" | "))]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def section(title: str, method: str, body: str) -> str:
    """'## title', the method paragraph, then the body (usually a table)."""
    return f"## {title}\n\n{method}\n\n{body}\n"


def verdict(met: bool, target: str) -> str:
    """'met (target)' or '**missed** (target)'."""
    return f"met ({target})" if met else f"**missed** ({target})"
