"""What nnexp shows of text it did not write (store names and tags, CSV headers, config values):
control characters and bidirectional overrides escaped on the terminal and in reports, error
lines capped, hints that say what the user wrote; and the errors that used to be tracebacks or a
wrong answer (a long experiment name, a busy port, a read-only launch folder) as one line."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_one_line_error, run_app, run_cli
from nnexp import console
from nnexp.report.document import Bullets, Code, Heading, Paragraph, Table, to_html, to_markdown
from nnexp.safety.printable import LINE_LIMIT, capped, printable, printable_line
from nnexp.sweep.progress import SweepProgress, record_job_end
from reliability.conftest import read_only, snapshot

#: Every character that must never reach a terminal or a report raw.
UNSAFE = (
    [chr(c) for c in range(0x20) if chr(c) not in "\t\n"]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + ["\u061c", "\u200e", "\u200f"]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
)
HOSTILE = "run \x1b]0;pwned\x07 \x1b[2J\x9b31m evil\u202egpj.exe \u2066x\u2069"


def assert_clean(text: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in text if c in UNSAFE})
    assert not found, found


@given(st.text(alphabet=st.sampled_from(UNSAFE) | st.characters(), max_size=60))
def test_printable_leaves_no_unsafe_character_and_keeps_the_rest(text):
    shown = printable(text)
    assert_clean(shown)
    assert "\n" not in printable_line(text) and "\t" not in printable_line(text)
    if not any(c in UNSAFE for c in text):
        assert shown == text


def test_escapes_name_the_character():
    assert printable(HOSTILE) == (
        "run \\x1b]0;pwned\\x07 \\x1b[2J\\x9b31m evil\\u202egpj.exe \\u2066x\\u2069"
    )


def test_a_long_line_keeps_its_start_and_its_fix_and_says_what_was_cut():
    text = "columns: " + ",".join(f"c{i}" for i in range(20_000)) + "; set dataset.target"
    shown = capped(text)
    assert len(shown) < LINE_LIMIT + 50
    assert shown.startswith("columns: c0,c1,") and shown.endswith("; set dataset.target")
    assert f"(+{len(text) - LINE_LIMIT:,} characters cut)" in shown
    assert capped("short") == "short"


def test_the_terminal_gets_escaped_one_line_errors_warnings_and_tables(capsys):
    console.error(f"experiment {HOSTILE} failed\nerror: forged second line")
    console.warning(HOSTILE)
    console.info(HOSTILE)
    console.table(HOSTILE, [HOSTILE, "[bold]b[/]"], [[HOSTILE, "[red]x"]])
    out, err = capsys.readouterr()
    assert_clean(out + err)
    assert len(err.splitlines()) == 2, err
    assert "\\x1b]0;pwned\\x07" in err and "\\x0aerror: forged" in err
    assert "[bold]b[/]" in out and "[red]x" in out


def test_a_piped_sweep_progress_line_shows_overrides_escaped(tmp_path, capsys):
    progress = SweepProgress(tmp_path, total=1, live=False)
    progress.start()
    record_job_end(tmp_path, 0, [f"dataset.target={HOSTILE}"], "failed", float("nan"))
    progress.stop()
    err = capsys.readouterr().err
    assert_clean(err)
    assert "job 0 failed: dataset.target=run \\x1b]0;pwned" in err


def test_reports_show_hostile_text_escaped_in_both_formats(tmp_path):
    blocks = [
        Heading(1, HOSTILE),
        Paragraph(HOSTILE),
        Bullets([HOSTILE]),
        Table([HOSTILE], [[HOSTILE]]),
        Code(f"tracking:\n  experiment: {HOSTILE}\n"),
    ]
    markdown, page = to_markdown(blocks), to_html(blocks, HOSTILE, tmp_path)
    assert_clean(markdown)
    assert_clean(page)
    assert "x1b]0;pwned" in markdown and "x1b]0;pwned" in page
    assert "tracking:\n  experiment:" in markdown


def csv_train(folder: Path, header: list[str], *args: str) -> subprocess.CompletedProcess:
    rows = [",".join(str(i + j) for j in range(len(header))) for i in range(3)]
    (folder / "data.csv").write_text("\n".join([",".join(header), *rows]) + "\n")
    return run_app(
        "nnexp-train",
        f"tracking.uri=sqlite:///{folder}/mlflow.db",
        "dataset=csv",
        "dataset.path=data.csv",
        *args,
        cwd=folder,
    )


def test_an_error_about_a_20000_column_csv_is_one_short_line(tmp_path):
    done = csv_train(tmp_path, [f"column{i}" for i in range(20_000)], "dataset.target=nope")
    line = assert_one_line_error(done, "'nope'", "characters cut", "set dataset.target")
    assert len(line) < LINE_LIMIT + 60


def test_a_csv_header_with_escape_sequences_is_shown_escaped(tmp_path):
    done = csv_train(tmp_path, ["a\x1b]0;pwned\x07", "b\u202e", "y"], "dataset.target=nope")
    line = assert_one_line_error(done, "\\x1b]0;pwned\\x07", "b\\u202e")
    assert_clean(done.stderr + line)


@pytest.mark.parametrize(("written", "column"), [("true", "true"), ("TRUE", "TRUE"), ("1", "1")])
def test_a_target_read_as_a_bool_or_number_is_hinted_as_written(tmp_path, written, column):
    done = csv_train(tmp_path, ["a", column, "y"], f"dataset.target={written}")
    assert_one_line_error(done, f"""dataset.target='"{column}"'""")
    assert '"True"' not in done.stderr


def test_an_experiment_name_too_long_for_the_store_is_refused_before_training(used_store, tmp_path):
    folder, uri = used_store
    before = snapshot(folder, uri)
    done = run_app(
        "nnexp-train", f"tracking.uri={uri}", f"tracking.experiment={'e' * 300}", cwd=tmp_path
    )
    assert_one_line_error(done, "tracking.experiment is 300 characters long", "shorter")
    assert snapshot(folder, uri) == before


def test_a_server_on_a_port_in_use_exits_non_zero_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("nnexp", "server", "--port", str(port), cwd=tmp_path, timeout=120)
    assert_one_line_error(done, f"127.0.0.1:{port}", "Address already in use", "--port")
    assert not (tmp_path / "mlflow.db").exists()


def test_a_read_only_launch_folder_is_one_line(used_store, tmp_path):
    folder, uri = used_store
    before = snapshot(folder, uri)
    with read_only(tmp_path / "launch") as launch:
        done = run_app("nnexp-train", f"tracking.uri={uri}", "optim.epochs=2", cwd=launch)
    assert_one_line_error(done, "Read-only file system", "launch from a folder you can write")
    assert snapshot(folder, uri) == before
