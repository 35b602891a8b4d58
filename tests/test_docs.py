"""The documentation: the README stays a front door, every relative link in it and in docs/
resolves, and the MkDocs site builds with warnings as errors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN, REPO

#: The README's length limit: a front door, the rest is the site.
README_LINES = 250
#: A Markdown link's or image's target: ``[text](target)`` or ``[text](target "title")``.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*(?:<([^>]+)>|([^)\s]+))(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]


def relative_links(page: Path) -> list[str]:
    """The targets of ``page``'s links that point into the repository (no scheme, not only an
    anchor), outside code blocks and code spans."""
    text = CODE_SPAN.sub("", FENCE.sub("", page.read_text()))
    targets = [match.group(1) or match.group(2) for match in LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def test_the_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_LINES, f"README.md has {len(lines)} lines, at most {README_LINES}"


def test_the_link_check_sees_links_and_skips_code(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text(
        "[a](docs/a.md#part) ![b](img/b.png) [web](https://x.org) [here](#top)\n"
        '`[not](code.md)`\n```\n[nor](block.md)\n```\n[c](<c d.md> "title")\n'
    )
    assert relative_links(page) == ["docs/a.md#part", "img/b.png", "c d.md"]


@pytest.mark.parametrize("page", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path):
    broken = [
        target
        for target in relative_links(page)
        if not (page.parent / target.split("#", 1)[0]).resolve().exists()
    ]
    assert not broken, f"{page.relative_to(REPO)} links to missing files: {broken}"


def nav_pages(nav) -> list[str]:
    """The page files of mkdocs.yml's ``nav`` (a list of ``title: page`` or ``title: [...]``)."""
    if isinstance(nav, str):
        return [nav]
    items = nav.values() if isinstance(nav, dict) else nav
    return [page for item in items for page in nav_pages(item)]


def test_the_site_lists_every_page_once():
    nav = nav_pages(yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"])
    pages = sorted(str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").glob("**/*.md"))
    assert sorted(nav) == pages


@pytest.mark.slow
def test_the_site_builds_strict(tmp_path: Path):
    """`mkdocs build --strict` (what `make docs` runs): a broken link or anchor, a page missing
    from the nav or an API reference that does not resolve fails it."""
    done = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        env={"PATH": str(BIN), "NO_MKDOCS_2_WARNING": "1", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    site = tmp_path / "site"
    assert (site / "index.html").is_file()
    assert 'id="nnexp.core.train"' in (site / "api" / "index.html").read_text()
    assert "fonts.googleapis.com" not in (site / "index.html").read_text()
