"""A sweep's lifecycle in its launching process: one ``Sweep`` object opens the MLflow parent run
and the progress line, closes them with a summary, or aborts them, and tells ``main`` the exit
code. ``main`` creates it (``sweep_scope``); Hydra's callback ``SweepParent`` only forwards
Hydra's start and end of the multirun to it. mlflow is imported only when a tracked sweep starts."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Quote, QuotedString
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from nnexp import console
from nnexp.errors import RUN_FAILED, UserError, first_line
from nnexp.private_api import split_sweep
from nnexp.run import folders as output_folders
from nnexp.safety.privacy import redact
from nnexp.signals import Terminated, on_stop
from nnexp.sweep import loky_tracker
from nnexp.sweep.progress import SweepProgress
from nnexp.tracking import sweep_file as sweep_folder

FAILED_MARKER = "job_failed.json"


class SweepAborted(BaseException):
    """A sweep that cannot be tracked, or a run or sweep whose folder holds the user's files,
    must not start; Hydra turns a callback's ordinary exceptions into warnings, so the reason
    travels to ``main`` in this one."""

    def __init__(self, error: UserError):
        super().__init__(str(error))
        self.error = error


def swept_axes(config: DictConfig) -> dict[str, str]:
    """Swept key → its sweep spec, from ``hydra.sweeper.params`` and the command line."""
    axes = {
        str(k): str(v) for k, v in (OmegaConf.select(config, "hydra.sweeper.params") or {}).items()
    }
    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        if override.is_sweep_override():
            axes[override.key_or_group] = override.get_value_string()
    return axes


def planned_jobs(config: DictConfig) -> int | None:
    """How many jobs the sweep will run: Optuna's n_trials, the basic sweeper's grid size, or
    None where the sweeper does not say."""
    sweeper = config.hydra.sweeper
    if "n_trials" in sweeper:
        return int(sweeper.n_trials)
    params = [f"{k}={v}" for k, v in (OmegaConf.select(sweeper, "params") or {}).items()]
    try:
        overrides = OverridesParser.create().parse_overrides(
            [*params, *config.hydra.overrides.task]
        )
        return sum(len(batch) for batch in split_sweep(overrides))
    except Exception:
        return None


def sweep_key(config: DictConfig, axes: dict[str, str]) -> str:
    """Same config name, fixed overrides, axes and experiment → same key: how resume finds the
    sweep to continue. The store's URI is left out (the parent is looked for in that store), so a
    resume finds its sweep whether the credentials come in the URI or from the environment."""
    fixed = sorted(
        o
        for o in config.hydra.overrides.task
        if not o.lstrip("+~").startswith(("sweep.resume", "tracking.uri"))
        and o.split("=", 1)[0] not in axes
    )
    payload = json.dumps(
        [config.hydra.job.config_name, fixed, axes, config.tracking.experiment], sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def move_sweep(config: DictConfig, folder: Path) -> None:
    """Make ``folder`` the sweep's ``hydra.sweep.dir``: in the sweep's config, and in the Hydra
    overrides every job's config is composed with, whichever launcher composes it."""
    kept = [o for o in config.hydra.overrides.hydra if not o.startswith("hydra.sweep.dir=")]
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.sweep.dir = str(folder)
        config.hydra.overrides.hydra = [
            *kept,
            f"hydra.sweep.dir={literal_value(str(folder))}",
        ]


def literal_value(text: str) -> str:
    """``text`` quoted as an override's value that Hydra's grammar parses back to ``text``."""
    return QuotedString(text=text, quote=Quote.single).with_quotes()


def write_failure(output_dir: Path, overrides: list[str], reason: str) -> None:
    """Mark a failed sweep job in its output folder, for the sweep's exit code."""
    record = {"overrides": [redact(o) for o in overrides], "reason": redact(reason)}
    (output_dir / FAILED_MARKER).write_text(json.dumps(record))


class Sweep:
    """One sweep seen from its launching process: the parent run (when tracked), the progress
    line, the failed jobs and the exit code. Opened at Hydra's multirun start, closed at its end,
    aborted if the sweep stops before that."""

    def __init__(self) -> None:
        self.info: Any = None
        self.sweep_dir: Path | None = None
        self.progress: SweepProgress | None = None
        self.failures: list[dict[str, Any]] = []
        self.summary_error: str | None = None

    def open(self, config: DictConfig) -> None:
        """Take the sweep's folder (refused if it holds the user's files), create (or, with
        sweep.resume=true, reopen) the parent run; start the progress line."""
        wanted = Path(config.hydra.sweep.dir)
        try:
            sweep_dir = output_folders.take_sweep_dir(wanted)
        except UserError as err:
            raise SweepAborted(err) from None
        if sweep_dir != wanted:
            move_sweep(config, sweep_dir)
        sweep_folder.clear_stop(sweep_dir)
        self.sweep_dir = sweep_dir
        loky_tracker.start_for(config)
        if config.tracking.enabled:
            self._open_parent(config)
        self.progress = SweepProgress(self.sweep_dir, planned_jobs(config))
        self.progress.start()

    def _open_parent(self, config: DictConfig) -> None:
        """The store and the folder's claim are checked before mlflow is imported
        (nnexp.tracking.sweep), so a store that cannot work or a folder another sweep writes
        into is one line within seconds."""
        from nnexp.tracking.uri import checked_uri

        axes = swept_axes(config)
        try:
            uri = checked_uri(config.tracking.uri, Path(config.hydra.runtime.cwd))
            sweep_folder.claim(self.sweep_dir)
            try:
                from nnexp.tracking.sweep import start_sweep

                self.info = start_sweep(
                    uri=uri,
                    experiment=config.tracking.experiment,
                    sweep_dir=self.sweep_dir,
                    axes=axes,
                    sweep_key=sweep_key(config, axes),
                    command=redact(shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])),
                    resume=bool(config.sweep.resume),
                    log_model=bool(config.tracking.log_model),
                )
            except BaseException:
                sweep_folder.release(self.sweep_dir)
                raise
        except UserError as err:
            raise SweepAborted(err) from None
        console.info(f"sweep parent run {self.info.parent_run_id} · outputs in {self.sweep_dir}")

    def close(self) -> None:
        """Stop the progress line; summarise the children into the parent, print the table,
        note failures."""
        self._stop_progress()
        self.failures = [
            json.loads(path.read_text()) for path in sorted(self.sweep_dir.rglob(FAILED_MARKER))
        ]
        if self.info is None:
            for failure in self.failures:
                console.info(f"failed: {' '.join(failure['overrides'])}: {failure['reason']}")
            return
        from nnexp.tracking.sweep import finish_sweep

        info, self.info = self.info, None
        try:
            summary = finish_sweep(info, self.sweep_dir)
        except Exception as err:
            self.summary_error = (
                f"could not summarise sweep {info.parent_run_id}: {first_line(err)}"
            )
            self.info = info
            self.abort("FAILED", self.summary_error)
            return
        show_summary(info, summary)

    def stopping(self, signum: int) -> None:
        """At the first stop signal (inside its handler): mark the folder, so no job starts."""
        if self.sweep_dir is not None:
            sweep_folder.mark_stopped(self.sweep_dir, signum)

    def abort(self, status: str, reason: str) -> None:
        """End a parent whose sweep stopped before its end (an error, a stop signal), and its
        children still RUNNING once their processes are gone (or after a grace period)."""
        self._stop_progress()
        info, self.info = self.info, None
        if info is None:
            return
        from nnexp.tracking.sweep import abort_sweep

        try:
            abort_sweep(info, status, reason)
        except UserError as err:
            console.error(
                f"could not end sweep parent {info.parent_run_id} {status}: {err}; "
                "`nnexp runs repair` fixes its status once the store is reachable again"
            )

    def _stop_progress(self) -> None:
        progress, self.progress = self.progress, None
        if progress is not None:
            progress.stop()

    def exit_code(self) -> int:
        """1 if the summary could not be made or any job failed (saying so on stderr), else 0."""
        if self.summary_error is not None:
            console.error(self.summary_error)
            return RUN_FAILED
        if self.failures:
            console.error(f"{len(self.failures)} job(s) failed; see the table above")
            return RUN_FAILED
        return 0


def show_summary(info: Any, summary: Any) -> None:
    """The sweep's table and its best job, on stdout."""
    keys = list(info.axes)
    console.table(
        f"sweep {info.parent_run_id}: "
        + ", ".join(f"{count} {label}" for label, count in sorted(summary.counts.items())),
        [*keys, "train_cost", "test_cost", "status", "reason", "run_id"],
        [
            [
                *row.values.values(),
                f"{row.train_cost:.6g}",
                f"{row.test_cost:.6g}",
                row.status,
                row.reason,
                row.run_id,
            ]
            for row in summary.rows
        ],
    )
    if summary.best is not None:
        best = " ".join(f"{k}={v}" for k, v in summary.best.values.items())
        console.info(
            f"best: {best} test_cost={summary.best.test_cost:.6g} (run {summary.best.run_id})"
        )


#: The sweep of the ``sweep_scope`` block running now, for Hydra's callback to reach.
_CURRENT: ContextVar[Sweep | None] = ContextVar("nnexp_sweep", default=None)


def current_sweep() -> Sweep | None:
    """The Sweep of the ``sweep_scope`` block running now (in the launching process), if any."""
    return _CURRENT.get()


@contextmanager
def sweep_scope() -> Iterator[Sweep]:
    """A Sweep for one ``nnexp-train`` command: Hydra's callback opens and closes it; a stop
    signal marks its folder at once (no job starts after it); leaving the block with the parent
    still open aborts it, KILLED on a stop signal, else FAILED."""
    sweep = Sweep()
    token = _CURRENT.set(sweep)
    try:
        with on_stop(sweep.stopping):
            yield sweep
    except KeyboardInterrupt:
        sweep.abort("KILLED", "interrupted (Ctrl-C)")
        raise
    except Terminated as err:
        sweep.abort("KILLED", str(err))
        raise
    finally:
        sweep.abort("FAILED", "the sweep stopped before its end")
        _CURRENT.reset(token)


class SweepParent(Callback):
    """Hydra's side of the sweep: forwards the multirun's start and end to the current Sweep
    (a fresh one when Hydra runs outside ``sweep_scope``)."""

    def __init__(self) -> None:
        self.sweep = _CURRENT.get() or Sweep()

    def __getstate__(self) -> dict[str, Any]:
        """Launchers send the callbacks to their workers, which never open a sweep: the
        launching process's Sweep (threads, a live display) stays behind."""
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.sweep = Sweep()

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Take a single run's folder before Hydra writes into it: ``hydra.run.dir`` becomes the
        folder taken (the next free ``NAME_N`` when another run has it), resolved once."""
        try:
            folder = output_folders.take_run_dir(Path(str(config.hydra.run.dir)))
        except UserError as err:
            raise SweepAborted(err) from None
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.run.dir = str(folder)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Open the sweep."""
        self.sweep.open(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Close the sweep."""
        self.sweep.close()
