"""`nnexp report --out` deletes nothing it did not write: a folder is replaced only when its
manifest vouches for every file in it (or, from before manifests, it holds regular report files
only), the folder keeps its permissions, and an --out that cannot be renamed into place is refused
before anything is uploaded."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_one_line_error, run_app
from nnexp.errors import UserError
from nnexp.report.output import MANIFEST, write_atomically

REPORT_LIKE = ["report.md", "report.html", "figures/a.png", "figures", MANIFEST]


def render(folder: Path) -> None:
    """What a report writes: two documents and a figure."""
    (folder / "report.md").write_text("# report\n")
    (folder / "report.html").write_text("<h1>report</h1>\n")
    (folder / "figures").mkdir()
    (folder / "figures" / "a.png").write_bytes(b"\x89PNG")


def tree(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def make_user_folder(folder: Path, kind: str, name: str) -> None:
    """A user's folder where ``name`` (a report-like name) is not a file nnexp wrote."""
    folder.mkdir()
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "folder holding a file":
        target.mkdir(exist_ok=True)
        (target / "thesis.tex").write_text("mine")
    elif kind == "link to a file":
        (folder.parent / "thesis.tex").write_text("mine")
        target.symlink_to(folder.parent / "thesis.tex")
    else:
        target.write_text("mine")
        (folder / "notes.txt").write_text("mine")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(
    st.sampled_from(["folder holding a file", "link to a file", "beside a user file"]),
    st.sampled_from(REPORT_LIKE),
)
def test_any_folder_with_anything_nnexp_did_not_write_is_left_alone(tmp_path_factory, kind, name):
    root = tmp_path_factory.mktemp("out")
    out = root / "out"
    if kind == "folder holding a file" and name == "figures":
        name = "figures/sub"
    make_user_folder(out, kind, name)
    before = tree(root)
    published = []
    with pytest.raises(UserError, match="nnexp did not write"):
        write_atomically(out, render, published.append)
    assert tree(root) == before and published == []


def test_a_report_nnexp_wrote_is_replaced_and_an_edited_one_is_not(tmp_path):
    out = tmp_path / "out"
    write_atomically(out, render, lambda folder: None)
    write_atomically(out, render, lambda folder: None)
    assert (out / MANIFEST).is_file()
    (out / "report.md").write_text("# my own notes now\n")
    before = tree(tmp_path)
    with pytest.raises(UserError, match=r"report\.md"):
        write_atomically(out, render, lambda folder: None)
    assert tree(tmp_path) == before


def test_a_report_from_before_manifests_is_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    render(out)
    write_atomically(out, render, lambda folder: None)
    assert (out / MANIFEST).is_file()


@pytest.mark.parametrize("mode", [0o700, 0o750, 0o755])
def test_the_folder_keeps_its_permissions(tmp_path, mode):
    out = tmp_path / "out"
    write_atomically(out, render, lambda folder: None)
    out.chmod(mode)
    write_atomically(out, render, lambda folder: None)
    assert stat.S_IMODE(out.stat().st_mode) == mode


def test_a_new_folder_follows_the_umask(tmp_path):
    umask = os.umask(0o077)
    try:
        write_atomically(tmp_path / "out", render, lambda folder: None)
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700


def test_out_that_cannot_be_renamed_is_refused_before_upload(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    published = []
    for out in (Path(), tmp_path, tmp_path.parent):
        with pytest.raises(UserError, match="working folder"):
            write_atomically(out, render, published.append)
    assert published == [] and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_keeps_a_users_file_named_like_a_report(used_store, tmp_path):
    folder, uri = used_store
    out = tmp_path / "out"
    make_user_folder(out, "folder holding a file", "report.md")
    done = run_app("nnexp", "report", "nnexp", "--tracking-uri", uri, "--out", str(out), cwd=folder)
    assert_one_line_error(done, "nnexp did not write", "report.md/thesis.tex")
    assert (out / "report.md" / "thesis.tex").read_text() == "mine"
    done = run_app("nnexp", "report", "nnexp", "--tracking-uri", uri, "--out", ".", cwd=out)
    assert_one_line_error(done, "working folder")
