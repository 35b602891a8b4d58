"""``nnexp-train``: the Hydra app. ``train`` is the recipe of one job: check the config, load the
data, build the network, train, log, and return the objective (the final test_cost) to the
sweeper. ``hydra_task`` wraps it with the job's exit policy and ``main`` with the command's."""

from __future__ import annotations

import os
import shutil
import sys
import traceback
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from nnexp import console, core
from nnexp.config import safe as safe_config
from nnexp.config import schema as config
from nnexp.config.hydra_errors import HYDRA_ERRORS, hydra_error_line
from nnexp.errors import (
    BAD_INPUT,
    RunFailed,
    TrainingDiverged,
    UserError,
    exit_code,
    unwritable_line,
)
from nnexp.provenance import source as provenance
from nnexp.run import deterministic
from nnexp.run import folders as output_folders
from nnexp.run.job import (
    Job,
    JobContext,
    JobOutcome,
    flat_config,
    prepare,
    run_name,
    task_overrides,
)
from nnexp.run.outputs import write_outputs
from nnexp.run.untracked import Untracked
from nnexp.safety import privacy
from nnexp.signals import Terminated, raise_pending, signals_raise
from nnexp.sweep.lifecycle import SweepAborted, sweep_scope, write_failure
from nnexp.sweep.progress import record_job_end
from nnexp.tracking import sweep_file as sweep_folder
from nnexp.tracking.vocabulary import CONFIG_HASH_TAG, JOB_NUM_TAG, OUTPUT_DIR_TAG, metric_values


def train(
    cfg: DictConfig, ctx: JobContext, extra_tags: Mapping[str, str] | None = None
) -> JobOutcome:
    """Check → load data → build network → train → log → the objective. ``extra_tags`` go on the
    run (e.g. ``nnexp.reproduces``)."""
    job = checked(cfg, ctx)
    tracker = open_tracker(cfg, ctx)
    name = run_name(cfg, ctx.overrides, tracker.axes)
    tags = job_tags(job, ctx, tracker.code_version, extra_tags)
    if job.cfg["sweep"]["resume"] and (done := tracker.finished(tags[CONFIG_HASH_TAG])):
        console.info(f"skipped {name}: run {done.run_id} already FINISHED with this config")
        return done
    with tracker.run(name, job.params(), tags, job.dataset) as log:
        result = fit(job, log, interactive=ctx.sweep_dir is None)
        files = write_outputs(job.cfg, job.dataset, result, job.seeds, ctx.output_dir)
        tracker.log_outputs(log, files, job.cfg["tracking"]["log_model"])
    outcome = JobOutcome(float(np.mean(result.history.test_cost[-1])), log.run_id)
    if ctx.sweep_dir is None:
        final_train = float(np.mean(result.history.train_cost[-1]))
        console.info(
            f"run {log.run_id or '(untracked)'} finished: train_cost={final_train:.6g} "
            f"test_cost={outcome.objective:.6g} after {job.hp.epochs} epochs · "
            f"{tracker.ui_hint(log.run_id)}"
        )
    return outcome


def checked(cfg: DictConfig, ctx: JobContext) -> Job:
    """The job with its data and initial weights; a sweep point whose config is rejected still
    gets its FAILED child run."""
    try:
        deterministic.check(cfg)
        return prepare(cfg, ctx)
    except UserError as err:
        if ctx.sweep_dir is not None and cfg.tracking.enabled:
            record_rejected(cfg, ctx, err)
        raise


def record_rejected(cfg: DictConfig, ctx: JobContext, error: UserError) -> None:
    """The FAILED child run of a rejected sweep point (skipped if the store cannot be opened)."""
    try:
        tracker = open_tracker(cfg, ctx)
    except UserError:
        return
    tracker.record_invalid(run_name(cfg, ctx.overrides, tracker.axes), flat_config(cfg), {}, error)


def sweep_job(config: DictConfig, output_dir: Path) -> tuple[DictConfig, JobContext]:
    """The job config and context of a sweep job, from ``config`` as a launcher composes it for
    the job (hydra node included): what the job itself would see."""
    hc = config.hydra
    ctx = JobContext(
        Path(hc.runtime.cwd), output_dir, task_overrides(hc), Path(hc.sweep.dir), hc.job.num
    )
    return OmegaConf.masked_copy(config, [key for key in config if key != "hydra"]), ctx


def finished_sweep_jobs(jobs: Sequence[tuple[DictConfig, Path]]) -> list[JobOutcome | None]:
    """For a launcher resuming a tracked sweep, per job (``config`` as composed for it, its
    output folder): the FINISHED run of its config, data and code, noted on the parent as the
    job's own look-up would; None when the job must run. The jobs share the sweep's store and
    experiment, so one tracker (one store check, one client) serves them all."""
    contexts = [sweep_job(config, output_dir) for config, output_dir in jobs]
    tracked = [(cfg, ctx) for cfg, ctx in contexts if cfg.tracking.enabled]
    if not tracked:
        return [None] * len(contexts)
    tracker = open_tracker(*tracked[0])
    outcomes: list[JobOutcome | None] = []
    for cfg, ctx in contexts:
        config_hash = config_hash_of(cfg, ctx, tracker.code_version)
        found = cfg.tracking.enabled and config_hash is not None
        outcomes.append(tracker.finished(config_hash) if found else None)
    return outcomes


def config_hash_of(cfg: DictConfig, ctx: JobContext, code_version: str) -> str | None:
    """The job's config hash (config, data, code), None for a config its job would reject."""
    try:
        return prepare(cfg, ctx).config_hash(code_version)
    except UserError:
        return None


def record_lost_sweep_job(config: DictConfig, output_dir: Path, status: str, reason: str) -> None:
    """A tracked sweep job the cluster lost (``config`` as composed for it, hydra node included):
    its run ends ``status`` with the reason, or one is created if it never opened; the config
    hash lets ``sweep.resume=true`` run it again."""
    cfg, ctx = sweep_job(config, output_dir)
    tracker = open_tracker(cfg, ctx)
    config_hash = config_hash_of(cfg, ctx, tracker.code_version)
    tags = {CONFIG_HASH_TAG: config_hash} if config_hash is not None else {}
    tracker.record_lost(
        run_name(cfg, ctx.overrides, tracker.axes),
        flat_config(cfg),
        tags,
        ctx.job_num,
        status,
        reason,
    )


def open_tracker(cfg: DictConfig, ctx: JobContext):
    """The job's MLflow side, or with tracking.enabled=false one that does nothing (and mlflow
    is never imported). The store is checked first: a single run's before mlflow is imported,
    so a store that cannot work is one line within seconds; a sweep job's, the sweep's store."""
    if not cfg.tracking.enabled:
        return Untracked(ctx.output_dir)
    from nnexp.tracking.uri import check_store, resolve_uri

    sweep = None
    if ctx.sweep_dir is not None:
        from nnexp.tracking.sweep import SweepInfo

        sweep = SweepInfo.load(ctx.sweep_dir)
    uri = sweep.tracking_uri if sweep else resolve_uri(cfg.tracking.uri, ctx.launch_dir)
    check_store(uri)
    from nnexp.run.tracked import JobTracker

    return JobTracker(uri, cfg.tracking.experiment, sweep)


def job_tags(
    job: Job, ctx: JobContext, code_version: str, extra: Mapping[str, str] | None
) -> dict[str, str]:
    """The run's config hash, output folder and sweep job number, plus ``extra``."""
    tags = {
        CONFIG_HASH_TAG: job.config_hash(code_version),
        OUTPUT_DIR_TAG: str(ctx.output_dir),
        **(extra or {}),
    }
    if ctx.job_num is not None:
        tags[JOB_NUM_TAG] = str(ctx.job_num)
    return tags


def fit(job: Job, log, interactive: bool) -> core.TrainResult:
    """Train the job's copies, streaming its metrics to the run (and a progress bar on a
    terminal), then their summaries (best values and epochs); raise TrainingDiverged if any
    copy's cost stopped being finite."""
    data = job.dataset
    dtype = job.W1.dtype
    train_set = (data.X_train.astype(dtype), data.y_train.astype(dtype))
    test_set = (data.X_test.astype(dtype), data.y_test.astype(dtype))
    with (
        console.epoch_progress(job.hp.epochs, interactive) as progress,
        deterministic.training_threads(job.cfg["model"]["deterministic"]),
    ):

        def on_record(epoch: int, values: Mapping[str, np.ndarray]) -> None:
            raise_pending()
            log.metrics(epoch, metric_values(values, job.seeds))
            progress(
                epoch, float(np.mean(values["train_cost"])), float(np.mean(values["test_cost"]))
            )

        result = core.train(
            job.W1,
            job.W2,
            train_set,
            test_set,
            job.hp,
            job.rngs,
            record_every=job.cfg["tracking"]["log_every"],
            on_record=on_record,
            record=job.metric_names,
        )
    log.metrics(result.history.epochs[-1], metric_values(result.history.summaries(), job.seeds))
    if (error := diverged_error(job, result.diverged_at)) is not None:
        raise error
    return result


def diverged_error(job: Job, diverged_at: Sequence[int | None]) -> TrainingDiverged | None:
    """The job's TrainingDiverged if any copy's cost stopped being finite (its epoch per copy in
    ``diverged_at``), else None."""
    diverged = [
        (seed, epoch)
        for seed, epoch in zip(job.seeds, diverged_at, strict=True)
        if epoch is not None
    ]
    if not diverged:
        return None
    seed, epoch = diverged[0]
    where = f"the cost stopped being finite at epoch {epoch}"
    if len(job.seeds) > 1:
        where = f"{len(diverged)} of {len(job.seeds)} seeds, first seed {seed} at epoch {epoch}"
    return TrainingDiverged(f"training diverged: {where}; lower optim.lr (now {job.hp.lr})")


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
                discard_unused_output(ctx.output_dir, ctx.launch_dir)
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


def discard_unused_output(output_dir: Path, launch_dir: Path) -> None:
    """Remove the folder of a run rejected as bad input when it holds only what Hydra and nnexp
    wrote before the job (.hydra/, the job's log, the folder's mark), and the parents that
    leaves empty, up to the launch folder."""
    if not output_dir.is_dir() or launch_dir not in output_dir.parents:
        return
    kept = (".hydra", output_folders.MARK)
    if any(p.name not in kept and p.suffix != ".log" for p in output_dir.iterdir()):
        return
    shutil.rmtree(output_dir, ignore_errors=True)
    for parent in output_dir.parents:
        if parent == launch_dir or any(parent.iterdir()):
            break
        parent.rmdir()
