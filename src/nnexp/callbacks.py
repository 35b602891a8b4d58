"""The Hydra callback that owns a sweep's MLflow parent run, and what the launching process keeps
to report the sweep's outcome. mlflow is imported only when a tracked sweep starts."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from nnexp import console
from nnexp.errors import UserError, first_line
from nnexp.privacy import redact

FAILED_MARKER = "job_failed.json"


class SweepAborted(BaseException):
    """A sweep that cannot be tracked must not start; Hydra turns a callback's ordinary
    exceptions into warnings, so the reason travels to ``main`` in this one."""

    def __init__(self, error: UserError):
        super().__init__(str(error))
        self.error = error


@dataclass
class SweepState:
    """The launching process's view of the sweep in progress and of failed jobs."""

    info: Any = None
    sweep_dir: Path | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    summary_error: str | None = None


STATE = SweepState()


def swept_axes(config: DictConfig) -> dict[str, str]:
    """Swept key → its sweep spec, from ``hydra.sweeper.params`` and the command line."""
    axes = {
        str(k): str(v) for k, v in (OmegaConf.select(config, "hydra.sweeper.params") or {}).items()
    }
    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        if override.is_sweep_override():
            axes[override.key_or_group] = override.get_value_string()
    return axes


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


def write_failure(output_dir: Path, overrides: list[str], reason: str) -> None:
    """Mark a failed sweep job in its output folder, for the sweep's exit code."""
    record = {"overrides": [redact(o) for o in overrides], "reason": redact(reason)}
    (output_dir / FAILED_MARKER).write_text(json.dumps(record))


class SweepParent(Callback):
    """Creates the store and the sweep's parent run before the first job, and closes it with a
    summary after the last; an untracked sweep only reports its failed jobs."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Create (or, with sweep.resume=true, reopen) the parent run."""
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        STATE.sweep_dir = sweep_dir
        if not config.tracking.enabled:
            return
        from nnexp.tracking.sweep import start_sweep
        from nnexp.tracking.uri import resolve_uri

        axes = swept_axes(config)
        try:
            STATE.info = start_sweep(
                uri=resolve_uri(config.tracking.uri, Path(config.hydra.runtime.cwd)),
                experiment=config.tracking.experiment,
                sweep_dir=sweep_dir,
                axes=axes,
                sweep_key=sweep_key(config, axes),
                command=redact(shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])),
                resume=bool(config.sweep.resume),
            )
        except UserError as err:
            raise SweepAborted(err) from None
        console.info(f"sweep parent run {STATE.info.parent_run_id} · outputs in {sweep_dir}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Summarise the children into the parent, print the table, note failures."""
        STATE.failures = [
            json.loads(path.read_text()) for path in sorted(STATE.sweep_dir.rglob(FAILED_MARKER))
        ]
        if STATE.info is None:
            for failure in STATE.failures:
                console.info(f"failed: {' '.join(failure['overrides'])}: {failure['reason']}")
            return
        from nnexp.tracking.sweep import finish_sweep

        info, STATE.info = STATE.info, None
        try:
            summary = finish_sweep(info, STATE.sweep_dir)
        except Exception as err:
            STATE.summary_error = (
                f"could not summarise sweep {info.parent_run_id}: {first_line(err)}"
            )
            return
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
