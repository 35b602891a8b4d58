"""What a person sees in the terminal: a progress bar, one-line errors, tables; every line with
its credentials redacted and its control characters escaped (``printable``), every error and
warning one line of at most 400 characters."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nnexp.safety.printable import capped, printable, printable_line
from nnexp.safety.privacy import redact

#: Wide enough for a sweep table with full run ids when output goes to a file or a pipe.
PIPE_WIDTH = 200
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(
    highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else PIPE_WIDTH
)


def one_line(message: str) -> str:
    """``message`` redacted, escaped onto one line and capped (``printable.capped``)."""
    return capped(printable_line(redact(message)))


def error(message: str) -> None:
    """One line on stderr: ``error: <message>``."""
    err_console.print(f"[bold red]error:[/] {escape(one_line(message))}", markup=True, emoji=False)


def warning(message: str) -> None:
    """One line on stderr: ``warning: <message>``."""
    err_console.print(
        f"[bold yellow]warning:[/] {escape(one_line(message))}", markup=True, emoji=False
    )


def info(message: str) -> None:
    """One plain line on stdout."""
    out_console.print(printable(redact(message)), markup=False, emoji=False)


@contextmanager
def epoch_progress(total: int, enabled: bool) -> Iterator:
    """Yields ``update(epoch, train_cost, test_cost)``; draws a bar on a terminal when enabled."""
    if not (enabled and sys.stderr.isatty()):
        yield lambda epoch, train_cost, test_cost: None
        return
    progress = Progress(
        TextColumn("epoch"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.fields[costs]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    task = progress.add_task("train", total=total, costs="")
    with progress:
        yield lambda epoch, train_cost, test_cost: progress.update(
            task, completed=epoch, costs=f"train {train_cost:.6g}  test {test_cost:.6g}"
        )


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A table on stdout."""
    shown = Table(title=escape(printable_line(redact(title))), title_justify="left")
    for column in columns:
        shown.add_column(escape(printable_line(redact(column))))
    for row in rows:
        shown.add_row(*(escape(printable_line(redact(str(cell)))) for cell in row))
    out_console.print(shown)
