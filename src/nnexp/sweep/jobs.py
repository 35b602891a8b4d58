"""A sweep's jobs as a launcher sees them (``config`` as composed for the job, hydra node
included): the job's own config and context, resume's look-up of finished jobs before they are
submitted, and the record of a job the cluster lost."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nnexp.errors import UserError
from nnexp.run.job import JobContext, JobOutcome, flat_config, prepare, run_name, task_overrides
from nnexp.run.recipe import open_tracker
from nnexp.tracking.vocabulary import CONFIG_HASH_TAG


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
    cfg, ctx = tracked[0]
    tracker = open_tracker(cfg.tracking, ctx)
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
    tracker = open_tracker(cfg.tracking, ctx)
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
