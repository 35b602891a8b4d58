"""``nnexp report TARGET``: resolve the target, read its runs, write the folder, log it to the
sweep's parent run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nnexp.report.document import to_html, to_markdown
from nnexp.report.output import write_atomically
from nnexp.report.records import read_records
from nnexp.report.target import resolve
from nnexp.tracking.store import store_errors

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

#: Where the report is logged inside the parent run's artifacts.
ARTIFACT_DIR = "report"


@dataclass(frozen=True)
class Written:
    """Where the report went: its folder, how many runs, and the parent run it was logged to."""

    folder: Path
    runs: int
    logged_to: str | None


def folder_name(target: str) -> str:
    """``target`` as one safe folder name: an MLflow experiment may be named ``../x`` or ``a/b``,
    and a default report folder must stay inside reports/."""
    return re.sub(r"[^\w.=-]+", "_", target).strip("._") or "report"


def make_report(
    client: MlflowClient, target: str, experiments_dir: Path, out: Path | None
) -> Written:
    """Write the report of ``target`` into ``out`` (default reports/<target>/) and log it to
    the sweep's parent run; the same runs give byte-identical files."""
    selection = resolve(client, target, experiments_dir)
    records = read_records(client, selection.runs)
    folder = out if out is not None else Path("reports") / folder_name(target)
    parent = selection.parent.info.run_id if selection.parent is not None else None

    def render(work: Path) -> None:
        from nnexp.report.content import build  # matplotlib (~1 s) only once there is a report

        blocks = build(selection, records, work)
        (work / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
        html = to_html(blocks, f"nnexp report: {target}", work)
        (work / "report.html").write_text(html, encoding="utf-8")

    def publish(work: Path) -> None:
        if parent is not None:
            with store_errors(client.tracking_uri):
                client.log_artifacts(parent, str(work), ARTIFACT_DIR)

    write_atomically(folder, render, publish)
    return Written(folder, len(records), parent)
