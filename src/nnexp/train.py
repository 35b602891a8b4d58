"""``nnexp-train``: the Hydra app. A job reads as a recipe: check the config, load the data, build
the network, train, log, and return the objective (the final test_cost) to the sweeper."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import traceback
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from nnexp import config, console, core, memory, privacy, provenance, safe_config
from nnexp.callbacks import STATE, SweepAborted, write_failure
from nnexp.data import Dataset, load_dataset
from nnexp.errors import RUN_FAILED, TrainingDiverged, UserError, exit_code
from nnexp.hydra_errors import HYDRA_ERRORS, hydra_error_line
from nnexp.outputs import write_outputs
from nnexp.signals import Terminated, sigterm_raises
from nnexp.vocabulary import (
    CONFIG_HASH_TAG,
    JOB_NUM_TAG,
    OUTPUT_DIR_TAG,
    cost_metrics,
    final_cost,
)
from nnexp.weights import load_weights

#: Keys that say where results go, not what is computed: left out of params and config hashes.
NOT_PARAMS = ("tracking", "sweep")


@dataclass(frozen=True)
class JobContext:
    """Where a job runs: launch folder (relative paths start there), output folder, overrides,
    and for a sweep job its sweep folder and number."""

    launch_dir: Path
    output_dir: Path
    overrides: list[str] = field(default_factory=list)
    sweep_dir: Path | None = None
    job_num: int | None = None

    @classmethod
    def from_hydra(cls) -> JobContext:
        """The context of the Hydra job running now."""
        hc = HydraConfig.get()
        multirun = hc.mode == RunMode.MULTIRUN
        return cls(
            launch_dir=Path(hc.runtime.cwd),
            output_dir=Path(hc.runtime.output_dir),
            overrides=OmegaConf.to_container(hc.overrides.task, resolve=False),
            sweep_dir=Path(hc.sweep.dir) if multirun else None,
            job_num=hc.job.num if multirun else None,
        )


@dataclass
class Job:
    """A checked config with its data and initial weights, ready to train."""

    cfg: dict[str, Any]
    dataset: Dataset
    W1: np.ndarray
    W2: np.ndarray
    rngs: list[np.random.Generator]
    hp: core.Hyperparams

    @property
    def seeds(self) -> list[int]:
        """The seed of each copy."""
        return list(range(self.cfg["seed"], self.cfg["seed"] + self.cfg["train"]["seeds"]))

    def params(self) -> dict[str, Any]:
        """The resolved config with dotted keys (tracking keys left out), plus the data's sizes."""
        sizes = {f"dataset.{key}": value for key, value in self.dataset.summary().items()}
        return {**flatten(params_view(self.cfg)), **sizes}

    def config_hash(self) -> str:
        """Same config, data and code, same hash: what resume compares."""
        payload = json.dumps(
            [params_view(self.cfg), self.dataset.digest(), provenance.code_version().label()],
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


def params_view(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config without the keys that only say where results go or could hold a credential."""
    return privacy.without_secrets(
        {key: value for key, value in cfg.items() if key not in NOT_PARAMS}
    )


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"hidden": 3}} → {"model.hidden": 3}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def model_streams(seed: int) -> np.random.Generator:
    """The generator of a copy's initial weights and mini-batch order (stream 1 of ``seed``)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])


def data_stream(seed: int) -> np.random.Generator:
    """The generator of the dataset's noise and split (stream 0 of ``dataset.seed``)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])


def prepare(cfg: DictConfig, ctx: JobContext) -> Job:
    """Check ranges, load the dataset, draw or load the initial weights."""
    try:
        config.check(cfg)
        resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    except HYDRA_ERRORS as err:
        key = getattr(err, "full_key", None)
        what = f"{key}: {str(err).splitlines()[0]}" if key else hydra_error_line(err)
        raise UserError(f"{what}; fix that value or its ${{…}} interpolation") from None
    spec = dict(resolved["dataset"])
    if spec.get("path") is not None:
        spec["path"] = str(ctx.launch_dir / spec["path"])
    fix = "lower dataset.n or dataset.d"
    memory.require(memory.dataset_bytes(spec), f"dataset={spec['name']}", fix)
    dataset = load_dataset(spec, data_stream(spec["seed"]))
    model, dtype = resolved["model"], np.dtype(resolved["model"]["dtype"])
    seeds = range(resolved["seed"], resolved["seed"] + resolved["train"]["seeds"])
    needed = memory.training_bytes(
        max(len(dataset.X_train), len(dataset.X_test)), dataset.d, model["hidden"], dataset.k,
        len(seeds), resolved["optim"]["batch_size"], dtype.itemsize,
    )  # fmt: skip
    sizes = f"model.hidden={model['hidden']} with train.seeds={len(seeds)}"
    memory.require(needed, sizes, "lower model.hidden, train.seeds or optim.batch_size")
    rngs = [model_streams(seed) for seed in seeds]
    if model["init_weights"] is not None:
        W1, W2 = load_weights(
            ctx.launch_dir / model["init_weights"], dataset.d, model["hidden"], dataset.k
        )
        W1 = np.repeat(W1[None], len(rngs), axis=0).astype(dtype)
        W2 = np.repeat(W2[None], len(rngs), axis=0).astype(dtype)
    else:
        W1, W2 = core.init_weights(
            dataset.d, model["hidden"], dataset.k, model["init"], rngs, dtype
        )
    optim = resolved["optim"]
    hp = core.Hyperparams(
        lr=optim["lr"],
        epochs=optim["epochs"],
        l2=resolved["regularization"]["l2"],
        reduction=resolved["cost"]["reduction"],
        batch_size=optim["batch_size"],
    )
    return Job(resolved, dataset, W1, W2, rngs, hp)


@dataclass(frozen=True)
class JobOutcome:
    """The objective (final test_cost, mean over seeds) and the MLflow run that holds the job."""

    objective: float
    run_id: str | None


def run_job(
    cfg: DictConfig, ctx: JobContext, extra_tags: Mapping[str, str] | None = None
) -> JobOutcome:
    """Check → load data → build network → train → log → the objective. ``extra_tags`` go on the
    run (e.g. ``nnexp.reproduces``)."""
    try:
        job = prepare(cfg, ctx)
    except UserError as err:
        record_rejected_sweep_job(cfg, ctx, err)
        raise
    tracker = open_tracker(cfg, ctx)
    name = run_name(cfg, ctx, tracker)
    tags = {
        CONFIG_HASH_TAG: job.config_hash(),
        OUTPUT_DIR_TAG: str(ctx.output_dir),
        **(extra_tags or {}),
    }
    if ctx.job_num is not None:
        tags[JOB_NUM_TAG] = str(ctx.job_num)
    if tracker is not None and job.cfg["sweep"]["resume"]:
        done = tracker.finished_run(tags[CONFIG_HASH_TAG])
        if done is not None:
            console.info(
                f"skipped {name}: run {done.info.run_id} already FINISHED with this config"
            )
            return JobOutcome(final_cost(done.data.metrics, "test"), done.info.run_id)
    with tracker.run(name, job.params(), tags, job.dataset) if tracker else nullcontext() as log:
        result = fit(job, log, interactive=ctx.sweep_dir is None)
        files = write_outputs(job.cfg, job.dataset, result, job.seeds, ctx.output_dir)
        if tracker is not None:
            tracker.log_outputs(log, files, job.dataset, job.cfg["tracking"]["log_model"])
    final_test = float(np.mean(result.history.test_cost[-1]))
    final_train = float(np.mean(result.history.train_cost[-1]))
    run_id = log.run_id if tracker is not None else None
    if ctx.sweep_dir is None:
        where = tracker.ui_hint(run_id) if tracker else f"outputs in {ctx.output_dir}"
        console.info(
            f"run {run_id or '(untracked)'} finished: train_cost={final_train:.6g} "
            f"test_cost={final_test:.6g} after {job.hp.epochs} epochs · {where}"
        )
    return JobOutcome(final_test, run_id)


def record_rejected_sweep_job(cfg: DictConfig, ctx: JobContext, error: UserError) -> None:
    """A tracked sweep job whose config was rejected still gets its FAILED child run."""
    if ctx.sweep_dir is None or not cfg.tracking.enabled:
        return
    try:
        tracker = open_tracker(cfg, ctx)
    except UserError:
        return
    if tracker.sweep is not None:
        tracker.record_invalid(run_name(cfg, ctx, tracker), flat_config(cfg), {}, error)


def record_lost_sweep_job(config: DictConfig, output_dir: Path, status: str, reason: str) -> None:
    """A tracked sweep job the cluster lost (``config`` as composed for it, hydra node included):
    its run ends ``status`` with the reason, or one is created if it never opened; the config
    hash lets ``sweep.resume=true`` run it again."""
    hc = config.hydra
    ctx = JobContext(
        Path(hc.runtime.cwd), output_dir, list(hc.overrides.task), Path(hc.sweep.dir), hc.job.num
    )
    cfg = OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
    tracker = open_tracker(cfg, ctx)
    try:
        tags = {"nnexp.config_hash": prepare(cfg, ctx).config_hash()}
    except UserError:
        tags = {}
    tracker.record_lost(
        run_name(cfg, ctx, tracker), flat_config(cfg), tags, ctx.job_num, status, reason
    )


def open_tracker(cfg: DictConfig, ctx: JobContext):
    """The job's MLflow side; None with tracking.enabled=false, and mlflow is never imported."""
    if not cfg.tracking.enabled:
        return None
    from nnexp.tracking.job import JobTracker
    from nnexp.tracking.sweep import SweepInfo
    from nnexp.tracking.uri import resolve_uri

    sweep = SweepInfo.load(ctx.sweep_dir) if ctx.sweep_dir is not None else None
    uri = resolve_uri(cfg.tracking.uri, ctx.launch_dir)
    return JobTracker(uri, cfg.tracking.experiment, sweep)


def fit(job: Job, log, interactive: bool) -> core.TrainResult:
    """Train the job's copies, streaming costs to the run (and a progress bar on a terminal);
    raise TrainingDiverged if any copy's cost stopped being finite."""
    data = job.dataset
    dtype = job.W1.dtype
    train_set = (data.X_train.astype(dtype), data.y_train.astype(dtype))
    test_set = (data.X_test.astype(dtype), data.y_test.astype(dtype))
    with console.epoch_progress(job.hp.epochs, interactive) as progress:

        def on_record(epoch: int, train_cost: np.ndarray, test_cost: np.ndarray) -> None:
            if log is not None:
                log.metrics(epoch, cost_metrics(train_cost, test_cost, job.seeds))
            progress(epoch, float(np.mean(train_cost)), float(np.mean(test_cost)))

        result = core.train(
            job.W1,
            job.W2,
            train_set,
            test_set,
            job.hp,
            job.rngs,
            record_every=job.cfg["tracking"]["log_every"],
            on_record=on_record,
        )
    diverged = [
        (seed, epoch)
        for seed, epoch in zip(job.seeds, result.diverged_at, strict=True)
        if epoch is not None
    ]
    if diverged:
        seed, epoch = diverged[0]
        where = f"the cost stopped being finite at epoch {epoch}"
        if len(job.seeds) > 1:
            where = f"{len(diverged)} of {len(job.seeds)} seeds, first seed {seed} at epoch {epoch}"
        raise TrainingDiverged(f"training diverged: {where}; lower optim.lr (now {job.hp.lr})")
    return result


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """Dotted keys of the config as given, for a job rejected before it could run."""
    try:
        return flatten(params_view(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)))
    except Exception:
        return {}


def run_name(cfg: DictConfig, ctx: JobContext, tracker) -> str:
    """``hidden=4 lr=0.5`` from a sweep's axes, or the dataset and main hyperparameters."""
    sweep = tracker.sweep if tracker is not None else None
    if sweep is not None and sweep.axes:
        chosen = dict(override.split("=", 1) for override in ctx.overrides if "=" in override)
        keys = [key.lstrip("+~") for key in sweep.axes]
        return " ".join(
            f"{short_name(key, keys)}={chosen.get(key, OmegaConf.select(cfg, key))}" for key in keys
        )
    return (
        f"{cfg.dataset.name} hidden={cfg.model.hidden} lr={cfg.optim.lr} l2={cfg.regularization.l2}"
    )


def short_name(key: str, keys: list[str]) -> str:
    """The last part of a dotted key, unless another swept key ends the same way."""
    last = key.rsplit(".", 1)[-1]
    return last if sum(k.rsplit(".", 1)[-1] == last for k in keys) == 1 else key


@dataclass
class Outcome:
    """What the launching process reports once Hydra returns."""

    error: UserError | None = None
    ctx: JobContext | None = None


OUTCOME = Outcome()


@hydra.main(version_base="1.3", config_path=str(config.CONF_DIR), config_name="config")
def hydra_task(cfg: DictConfig) -> float | None:
    """One Hydra job. A single run's user error is kept for ``main`` to report; a sweep job's
    failure is recorded and the sweeper gets ``sweep.failed_objective`` so the sweep goes on."""
    ctx = JobContext.from_hydra()
    try:
        return run_job(cfg, ctx).objective
    except UserError as err:
        if ctx.sweep_dir is None:
            OUTCOME.error, OUTCOME.ctx = err, ctx
            return None
        reason = str(err)
    except Exception as err:
        if ctx.sweep_dir is None:
            raise
        traceback.print_exc()
        reason = f"{type(err).__name__}: {err}"
    console.error(f"job {ctx.job_num} ({' '.join(ctx.overrides)}) failed: {reason}")
    write_failure(ctx.output_dir, ctx.overrides, reason)
    return float(cfg.sweep.failed_objective)


def main() -> None:
    """Console script ``nnexp-train``: run the Hydra app; bad input becomes one line and exit 2,
    a failed run (diverged, store lost, disk full) or a sweep with failed jobs exit 1, an
    interrupted one 130 or 143. A password in a URI on the command line is hidden from Hydra
    (and so from every file and log line) and noted in one warning."""
    os.environ["HYDRA_FULL_ERROR"] = "1"
    privacy.telemetry_off_by_default()
    sys.argv[1:], hidden = privacy.hide_secret_args(sys.argv[1:])
    if hidden:
        console.warning(privacy.ENVIRONMENT_ADVICE)
    config.register_schemas()
    safe_config.guard_hydra()
    code = 0
    try:
        with sigterm_raises():
            hydra_task()
    except UserError as err:
        console.error(str(err))
        code = exit_code(err)
    except SweepAborted as err:
        console.error(str(err.error))
        code = exit_code(err.error)
    except HYDRA_ERRORS as err:
        console.error(hydra_error_line(err))
        code = exit_code(err)
    except KeyboardInterrupt as err:
        code = exit_code(err)
        close_open_sweep("KILLED", "interrupted (Ctrl-C)")
    except Terminated as err:
        code = exit_code(err)
        close_open_sweep("KILLED", str(err))
    finally:
        close_open_sweep("FAILED", "the sweep stopped before its end")
    if OUTCOME.error is not None:
        console.error(str(OUTCOME.error))
        code = exit_code(OUTCOME.error)
        if code != RUN_FAILED and OUTCOME.ctx is not None:
            discard_unused_output(OUTCOME.ctx.output_dir, OUTCOME.ctx.launch_dir)
    elif STATE.summary_error is not None:
        console.error(STATE.summary_error)
        code = RUN_FAILED
    elif STATE.failures and code == 0:
        console.error(f"{len(STATE.failures)} job(s) failed; see the table above")
        code = RUN_FAILED
    sys.exit(code)


def discard_unused_output(output_dir: Path, launch_dir: Path) -> None:
    """Remove the folder of a run rejected as bad input when it holds only what Hydra wrote
    before the job (.hydra/ and the job's log), and the parents that leaves empty, up to the
    launch folder."""
    if not output_dir.is_dir() or launch_dir not in output_dir.parents:
        return
    if any(p.name != ".hydra" and p.suffix != ".log" for p in output_dir.iterdir()):
        return
    shutil.rmtree(output_dir, ignore_errors=True)
    for parent in output_dir.parents:
        if parent == launch_dir or any(parent.iterdir()):
            break
        parent.rmdir()


def close_open_sweep(status: str, reason: str) -> None:
    """End the parent run of a sweep that Hydra left without its end callback."""
    info, STATE.info = STATE.info, None
    if info is not None:
        from nnexp.tracking.sweep import abort_sweep

        abort_sweep(info, status, reason)
