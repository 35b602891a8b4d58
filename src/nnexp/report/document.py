"""A report as a list of blocks, rendered to markdown and to one self-contained HTML page (images
inlined as base64 data URIs). Inline `code` spans are the only markup inside text: whatever a run
name, param, tag or column name holds (HTML, markdown, line breaks, backticks), it renders as the
same literal text in both formats, its control characters and bidirectional overrides escaped
(``printable``)."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, replace
from pathlib import Path

from nnexp.safety.printable import printable


@dataclass(frozen=True)
class Heading:
    """A section title; level 1 is the report's title."""

    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    """Running text."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """An unordered list."""

    items: list[str]


@dataclass(frozen=True)
class Table:
    """A table of text cells."""

    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Code:
    """A verbatim block (a config file, a command)."""

    text: str
    language: str = ""


@dataclass(frozen=True)
class Image:
    """A figure: its path relative to the report's folder, and a caption."""

    path: str
    caption: str


Block = Heading | Paragraph | Bullets | Table | Code | Image


def _printable(block: Block) -> Block:
    """``block`` with every text it shows passed through ``printable``; outside code, line breaks
    first become spaces (as markdown would show them)."""

    def inline(text: str) -> str:
        return printable(LINE_BREAKS.sub(" ", text))

    if isinstance(block, Code):
        return replace(block, text=printable(block.text))
    if isinstance(block, Heading | Paragraph):
        return replace(block, text=inline(block.text))
    if isinstance(block, Bullets):
        return replace(block, items=[inline(item) for item in block.items])
    if isinstance(block, Table):
        return replace(
            block,
            columns=[inline(c) for c in block.columns],
            rows=[[inline(c) for c in row] for row in block.rows],
        )
    return replace(block, caption=inline(block.caption))


def to_markdown(blocks: list[Block]) -> str:
    """GitHub-flavoured markdown, blocks separated by one blank line."""
    return "\n\n".join(_markdown(_printable(block)) for block in blocks) + "\n"


def _markdown(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {_md_inline(block.text)}"
    if isinstance(block, Paragraph):
        return _md_block_start(_md_inline(block.text))
    if isinstance(block, Bullets):
        return "\n".join(f"- {_md_block_start(_md_inline(item))}" for item in block.items)
    if isinstance(block, Table):
        lines = [_row(block.columns), _row(["---"] * len(block.columns))]
        return "\n".join(lines + [_row(row) for row in block.rows])
    if isinstance(block, Code):
        longest = max((len(run) for run in re.findall(r"`+", block.text)), default=0)
        fence = "`" * max(3, longest + 1)
        return f"{fence}{block.language}\n{block.text.rstrip()}\n{fence}"
    caption = _md_inline(block.caption)
    return f"![{caption}]({block.path})\n\n*{caption}*"


#: Line breaks of any kind: inside a block they would end it (or start a heading, list or table).
LINE_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029]+")
#: Characters that make markdown or HTML: backslash-escaped outside code spans. An underscore
#: inside a word (``test_cost``) makes nothing and stays as it is.
MARKUP = re.compile(r"[\\`*\[\]<>!~&#]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def _md_inline(text: str) -> str:
    """One line of markdown that shows ``text`` literally, its `code` spans kept as spans."""
    parts = re.split(r"(`[^`]+`)", LINE_BREAKS.sub(" ", text))
    return "".join(
        part if index % 2 else MARKUP.sub(lambda m: "\\" + m.group(0), part)
        for index, part in enumerate(parts)
    )


#: What makes the start of a block a list item, a thematic break or a setext underline: -, +, =
#: or "1." / "1)" first (leading white space, which could make indented code, is dropped).
BLOCK_START = re.compile(r"[-+=]|\d+[.)]")


def _md_block_start(line: str) -> str:
    """``line`` (already inline-escaped) with whatever would open a block at its start escaped."""
    line = line.lstrip()
    found = BLOCK_START.match(line)
    if found is None:
        return line
    return f"{line[: found.end() - 1]}\\{line[found.end() - 1 :]}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(_md_inline(cell).replace("|", "\\|") for cell in cells) + " |"


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.88rem; background: #f6f6f6; }
pre { padding: 0.75rem; overflow-x: auto; }
figure { margin: 1rem 0; } figure img { max-width: 100%; }
figcaption { font-style: italic; color: #555; }
"""


def to_html(blocks: list[Block], title: str, folder: Path) -> str:
    """One HTML page; each Image is read from ``folder`` and inlined as a data URI."""
    body = "\n".join(_html(_printable(block), folder) for block in blocks)
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{html.escape(printable(title))}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _html(block: Block, folder: Path) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_inline(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{_inline(c)}</th>" for c in block.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, Code):
        return f"<pre><code>{html.escape(block.text.rstrip())}</code></pre>"
    data = base64.b64encode((folder / block.path).read_bytes()).decode("ascii")
    return (
        f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(block.caption)}'>"
        f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
    )
