"""report.md shows whatever runs hold as literal text: any run name, param, tag or CSV column name
(HTML, markdown, line breaks, backticks) renders, through a CommonMark parser, to the same text
and no markup but code spans; a command's code fence holds any backticks."""

from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from nnexp.report.document import LINE_BREAKS, Code, Heading, Paragraph, Table, to_markdown

PARSER = MarkdownIt("commonmark").enable("table")
TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"]) | st.sampled_from("\n\r`|<>&*_#[]!\\")
)
NO_BACKTICKS = TEXT.map(lambda text: text.replace("`", ""))


def rendered(markdown: str) -> str:
    return PARSER.render(markdown)


def tags(page: str) -> set[str]:
    return set(re.findall(r"</?([a-z0-9]+)", page))


def literal(text: str) -> str:
    """What a reader sees for ``text``: line breaks as spaces, surrounding space trimmed."""
    return " ".join(LINE_BREAKS.sub(" ", text).split(" ")).strip(" \t")


@given(NO_BACKTICKS)
def test_any_text_is_shown_literally(text):
    page = rendered(to_markdown([Paragraph(text)]))
    assert tags(page) <= {"p"}
    shown = html.unescape(re.sub(r"</?p>", "", page)).strip("\n")
    assert " ".join(shown.split()) == " ".join(literal(text).split())


@given(TEXT)
def test_any_text_makes_no_markup_but_code_spans(text):
    page = rendered(to_markdown([Heading(2, text), Paragraph(text)]))
    assert tags(page) <= {"h2", "p", "code"}


@given(st.lists(TEXT, min_size=1, max_size=4), st.lists(TEXT, min_size=1, max_size=4))
def test_any_cells_keep_the_table_shape(columns, cells):
    row = (cells * len(columns))[: len(columns)]
    page = rendered(to_markdown([Table(columns, [row])]))
    assert page.count("<th>") == len(columns) and page.count("<td>") == len(columns)
    assert tags(page) <= {"table", "thead", "tbody", "tr", "th", "td", "code"}


@given(TEXT.filter(lambda text: text.strip()))
def test_any_command_stays_inside_its_code_fence(command):
    command = command.replace("\r", "")
    page = rendered(to_markdown([Code(command, "sh")]))
    assert tags(page) == {"pre", "code"}
    body = re.sub(r"^<pre><code[^>]*>|</code></pre>\n$", "", page)
    assert html.unescape(body) == command.rstrip() + "\n"
