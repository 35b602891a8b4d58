"""The tracker of a run with tracking.enabled=false: the calls of ``tracking.job.JobTracker``,
doing nothing, so the training recipe has no "is tracking on?" branches (mlflow is never
imported)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from nnexp.data import Dataset
from nnexp.run.job import JobOutcome


class UntrackedLog:
    """A run log that keeps nothing."""

    run_id: str | None = None

    def metrics(self, step: int, values: Mapping[str, float]) -> None:
        """Drop the points."""


class Untracked:
    """No store: no run, no resume look-up, no uploads; the outputs stay in ``output_dir``."""

    axes: list[str] = []  # noqa: RUF012 (read only)
    code_version = ""

    def __init__(self, output_dir: Path):
        self.output_dir = output_dir

    def finished(self, config_hash: str) -> JobOutcome | None:
        """Nothing to resume from."""
        return None

    @contextmanager
    def run(
        self, name: str, params: Mapping[str, object], tags: Mapping[str, str], dataset: Dataset
    ) -> Iterator[UntrackedLog]:
        """A block with a log that keeps nothing."""
        yield UntrackedLog()

    def log_outputs(self, log: UntrackedLog, files: Mapping[str, Path], with_model: bool) -> None:
        """The files are already in the output folder."""

    def record_invalid(
        self, name: str, params: Mapping[str, object], tags: Mapping[str, str], error: Exception
    ) -> None:
        """A rejected config leaves no run."""

    def ui_hint(self, run_id: str | None) -> str:
        """Where the results are."""
        return f"outputs in {self.output_dir}"
