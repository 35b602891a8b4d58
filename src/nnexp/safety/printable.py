"""Text from outside nnexp (store names, params and tags, CSV headers, config values) made safe to
show: control characters and bidirectional overrides escaped, so none can move the cursor, clear
or retitle a terminal, or reorder what a reader sees; and one-line messages capped in length."""

from __future__ import annotations

import re

#: C0 controls but tab and line feed, DEL, C1 controls, and the bidirectional marks, embeddings,
#: overrides and isolates (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: The same, and line feed and tab too: for text that must stay on one line.
UNSAFE_IN_LINE = re.compile(f"[\t\n{UNSAFE.pattern[1:-1]}]")
#: Characters an error or warning line keeps: its start and its end (where the fix is said); the
#: middle is cut with a note of how much.
LINE_LIMIT = 400
KEPT_END = 150


def _escaped(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every unsafe character written as its escape (ESC → ``\\x1b``, U+202E →
    ``\\u202e``); tabs and line breaks kept."""
    return UNSAFE.sub(_escaped, text)


def printable_line(text: str) -> str:
    """``text`` as one line: unsafe characters, tabs and line breaks written as escapes."""
    return UNSAFE_IN_LINE.sub(_escaped, text)


def capped(text: str, limit: int = LINE_LIMIT, end: int = KEPT_END) -> str:
    """``text`` if at most ``limit`` characters; else its first ``limit - end`` and last ``end``
    characters around a note of how many were cut: ``… (+149,700 characters cut) …``."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return f"{text[: limit - end]} … (+{cut:,} characters cut) … {text[-end:]}"
