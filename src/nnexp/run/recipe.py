"""The recipe of one job: check the config, load the data, build the network, train, log, and
return the objective (the final test_cost) to the sweeper. A launcher that trains jobs together
(``nnexp.sweep.batch``) reuses its steps: ``checked``, ``open_tracker``, ``job_tags``,
``diverged_error``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from omegaconf import DictConfig

from nnexp import console, core
from nnexp.config.schema import TrackingSchema
from nnexp.errors import TrainingDiverged, UserError
from nnexp.run import deterministic
from nnexp.run.job import Job, JobContext, JobOutcome, flat_config, prepare, run_name
from nnexp.run.outputs import write_outputs
from nnexp.run.untracked import Untracked
from nnexp.signals import raise_pending
from nnexp.tracking.vocabulary import CONFIG_HASH_TAG, JOB_NUM_TAG, OUTPUT_DIR_TAG, metric_values


def train(
    cfg: DictConfig, ctx: JobContext, extra_tags: Mapping[str, str] | None = None
) -> JobOutcome:
    """Check → load data → build network → train → log → the objective. ``extra_tags`` go on the
    run (e.g. ``nnexp.reproduces``)."""
    job = checked(cfg, ctx)
    tracker = open_tracker(job.config.tracking, ctx)
    name = run_name(cfg, ctx.overrides, tracker.axes)
    tags = job_tags(job, ctx, tracker.code_version, extra_tags)
    if job.config.sweep.resume and (done := tracker.finished(tags[CONFIG_HASH_TAG])):
        console.info(f"skipped {name}: run {done.run_id} already FINISHED with this config")
        return done
    with tracker.run(name, job.params(), tags, job.dataset) as log:
        result = fit(job, log, interactive=ctx.sweep_dir is None)
        files = write_outputs(job, result, ctx.output_dir)
        tracker.log_outputs(log, files, job.config.tracking.log_model)
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
        with deterministic.training_threads(bool(cfg.model.get("deterministic"))):
            return prepare(cfg, ctx)
    except UserError as err:
        if ctx.sweep_dir is not None and cfg.tracking.enabled:
            record_rejected(cfg, ctx, err)
        raise


def record_rejected(cfg: DictConfig, ctx: JobContext, error: UserError) -> None:
    """The FAILED child run of a rejected sweep point (skipped if the store cannot be opened)."""
    try:
        tracker = open_tracker(cfg.tracking, ctx)
    except UserError:
        return
    tracker.record_invalid(run_name(cfg, ctx.overrides, tracker.axes), flat_config(cfg), {}, error)


def open_tracker(tracking: TrackingSchema | DictConfig, ctx: JobContext):
    """The job's MLflow side from its ``tracking`` section, or with tracking.enabled=false one
    that does nothing (and mlflow is never imported). The store is checked first: a single
    run's before mlflow is imported, so a store that cannot work is one line within seconds; a
    sweep job's, the sweep's store."""
    if not tracking.enabled:
        return Untracked(ctx.output_dir)
    from nnexp.tracking.uri import check_store, checked_uri

    sweep = None
    if ctx.sweep_dir is not None:
        from nnexp.tracking.sweep import SweepInfo

        sweep = SweepInfo.load(ctx.sweep_dir)
    if sweep is None:
        uri = checked_uri(tracking.uri, ctx.launch_dir)
    else:
        uri = sweep.tracking_uri
        check_store(uri)
    from nnexp.run.tracked import JobTracker

    return JobTracker(uri, tracking.experiment, sweep)


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
        deterministic.training_threads(job.config.model.deterministic),
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
            record_every=job.config.tracking.log_every,
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
