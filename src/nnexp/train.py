"""``nnexp-train``: the Hydra app. ``hydra_task`` runs one job's recipe (``nnexp.run.recipe``)
with the job's exit policy, and ``main`` wraps Hydra with the command's."""

from __future__ import annotations

import os
import sys
import traceback
from contextvars import ContextVar

import hydra
from omegaconf import DictConfig

from nnexp import console
from nnexp.config import safe as safe_config
from nnexp.config import schema as config
from nnexp.config.hydra_errors import HYDRA_ERRORS, hydra_error_line
from nnexp.errors import (
    BAD_INPUT,
    RunFailed,
    UserError,
    exit_code,
    unwritable_line,
)
from nnexp.provenance import source as provenance
from nnexp.run import deterministic
from nnexp.run import folders as output_folders
from nnexp.run.job import (
    JobContext,
)
from nnexp.run.recipe import train
from nnexp.safety import privacy
from nnexp.signals import Terminated, signals_raise
from nnexp.sweep.lifecycle import SweepAborted, sweep_scope, write_failure
from nnexp.sweep.progress import record_job_end
from nnexp.tracking import sweep_file as sweep_folder

#: A single run's error, handed from the job to ``main``: an exception leaving the job would make
#: Hydra print a line of its own ("Error executing job with overrides: …") before nnexp's.
_RUN_ERROR: ContextVar[UserError | None] = ContextVar("nnexp_run_error", default=None)


def keep_run_error(error: UserError) -> None:
    """Hand a single run's error to ``main`` (a function, so that launchers pickling the task
    pickle this by name and never the ContextVar)."""
    _RUN_ERROR.set(error)


@hydra.main(version_base="1.3", config_path=str(config.CONF_DIR), config_name="config")
def hydra_task(cfg: DictConfig) -> float | None:
    """One Hydra job. A single run's error goes to ``main`` (a rejected run's folder removed
    first); a sweep job's failure is recorded and the sweeper gets ``sweep.failed_objective``,
    so the sweep goes on. A sweep job's end is appended to the sweep's progress file; no sweep
    job starts once its sweep is stopping."""
    ctx = JobContext.from_hydra()
    if ctx.sweep_dir is None:
        try:
            return train(cfg, ctx).objective
        except UserError as err:
            if not isinstance(err, RunFailed):
                output_folders.discard_unused_output(ctx.output_dir, ctx.launch_dir)
            keep_run_error(err)
            return None
    sweep_folder.refuse_after_stop(ctx.sweep_dir)
    try:
        outcome = train(cfg, ctx)
    except UserError as err:
        reason = str(err)
    except Exception as err:
        traceback.print_exc()
        reason = f"{type(err).__name__}: {err}"
    else:
        record_job_end(ctx.sweep_dir, ctx.job_num, ctx.overrides, "finished", outcome.objective)
        return outcome.objective
    console.error(f"job {ctx.job_num} ({' '.join(ctx.overrides)}) failed: {reason}")
    write_failure(ctx.output_dir, ctx.overrides, reason)
    record_job_end(ctx.sweep_dir, ctx.job_num, ctx.overrides, "failed", float("nan"))
    return float(cfg.sweep.failed_objective)


def main() -> None:
    """Console script ``nnexp-train``: run the Hydra app; bad input becomes one line and exit 2,
    a failed run (diverged, store lost, disk full) or a sweep with failed jobs exit 1, an
    interrupted one 128 + its signal (``errors.exit_code``). A password in a URI on the command
    line is hidden from Hydra (and so from every file and log line) and noted in one warning.
    ``model.deterministic=true`` on the command line first restarts it on the baseline."""
    deterministic.pin_process(sys.argv[1:])
    os.environ["HYDRA_FULL_ERROR"] = "1"
    privacy.telemetry_off_by_default()
    sys.argv[1:], hidden = privacy.hide_secret_args(sys.argv[1:])
    if hidden:
        console.warning(privacy.ENVIRONMENT_ADVICE)
    config.register_schemas()
    provenance.code_version()
    try:
        with signals_raise(), safe_config.checked_hydra(), sweep_scope() as sweep:
            hydra_task()
        if (error := _RUN_ERROR.get()) is not None:
            raise error
        code = sweep.exit_code()
    except (UserError, *HYDRA_ERRORS) as err:
        console.error(hydra_error_line(err) if isinstance(err, HYDRA_ERRORS) else str(err))
        code = exit_code(err)
    except SweepAborted as err:
        console.error(str(err.error))
        code = exit_code(err.error)
    except OSError as err:
        console.error(unwritable_line(err))
        code = BAD_INPUT
    except (KeyboardInterrupt, Terminated) as err:
        code = exit_code(err)
    sys.exit(code)
