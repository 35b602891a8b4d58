"""The names runs are recorded under, and how to read them back: tags, metrics per seed, a run's
final cost, the latest attempt of each config. Training, tracking, reports and reproduce all
speak it.

No mlflow import: a run here is anything shaped like ``mlflow.entities.Run`` (``info.run_id``,
``info.start_time``, ``data.tags``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from mlflow.entities import Run

    RunT = TypeVar("RunT", bound=Run)
else:
    RunT = TypeVar("RunT")

# What a run is, and how it ended.
RUN_TYPE_TAG = "nnexp.run_type"  # "sweep" (a parent), "child" (a sweep's job) or "single"
STATUS_TAG = "nnexp.status"  # finished, failed, diverged or killed
ERROR_TAG = "nnexp.error"  # why it failed or was killed
PARENT_RUN_TAG = "mlflow.parentRunId"

# What it computed, and for whom.
CONFIG_HASH_TAG = "nnexp.config_hash"  # same config, data and code: what resume compares
JOB_NUM_TAG = "nnexp.job_num"
OUTPUT_DIR_TAG = "nnexp.output_dir"
REPRODUCES_TAG = "nnexp.reproduces"  # the run that `nnexp reproduce` retrained

# Where, and by which code.
GIT_COMMIT_TAG = "nnexp.git_commit"
GIT_DIRTY_TAG = "nnexp.git_dirty"
CODE_VERSION_TAG = "nnexp.code_version"  # the commit plus a hash of uncommitted changes
VERSION_TAG_PREFIX = "nnexp.version."  # + a package name: its version
HOST_TAG, PID_TAG = "nnexp.host", "nnexp.pid"  # for `nnexp runs repair`
BLAS_THREADS_TAG = "nnexp.blas_threads"

# A sweep's parent run.
SWEEP_KEY_TAG = "nnexp.sweep_key"  # same sweep command → same key: what resume looks up
SWEEP_DIR_TAG = "nnexp.sweep_dir"
BEST_MODEL_TAG = "nnexp.model_of"  # the child whose model the parent holds
RESUMED_TAG = "nnexp.resumed_ms"  # when a resumed sweep's process took over (ms since epoch)
COMMAND_TAG = "nnexp.command"
SKIP_TAG_PREFIX = "nnexp.skipped."  # + a config hash: the FINISHED run that resume reused
BEST_RUN_TAG = "nnexp.best_run_id"
BEST_TAG_PREFIX = "nnexp.best."  # + a swept key: its value in the best job

SPLITS = ("train", "test")


def cost_key(split: str, stat: str = "") -> str:
    """The metric of a split's cost: ``train_cost``; over batched seeds ``train_cost_mean`` and
    ``train_cost_std`` (``stat`` "mean" or "std")."""
    return f"{split}_cost_{stat}" if stat else f"{split}_cost"


def metric_values(values: Mapping[str, np.ndarray], seeds: Sequence[int]) -> dict[str, float]:
    """Each metric's values (S,) under its name for one copy (``train_cost``); for several,
    each seed's (``train_cost/seed_3``) and their mean and std (``train_cost_mean``,
    ``train_cost_std``). Non-finite values (a diverged copy) are left out."""
    found: dict[str, float] = {}
    for name, per_copy in values.items():
        if len(seeds) == 1:
            found[name] = per_copy[0]
            continue
        found[f"{name}_mean"] = float(np.mean(per_copy))
        found[f"{name}_std"] = float(np.std(per_copy))
        for seed, value in zip(seeds, per_copy, strict=True):
            found[f"{name}/seed_{seed}"] = value
    return {key: float(value) for key, value in found.items() if math.isfinite(value)}


def final_cost(metrics: Mapping[str, float], split: str) -> float:
    """A run's last recorded cost of ``split`` (the mean over batched seeds); NaN without one."""
    return float(metrics.get(cost_key(split), metrics.get(cost_key(split, "mean"), math.nan)))


def latest_attempts(runs: Iterable[RunT]) -> dict[str, RunT]:
    """Config hash → the latest run of that config (a run without the tag stands for itself)."""
    latest: dict[str, RunT] = {}
    for run in sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id)):
        latest[run.data.tags.get(CONFIG_HASH_TAG, run.info.run_id)] = run
    return latest


def whole_number(tag_value: str) -> bool:
    """Whether a tag's value reads as a whole number: ASCII digits only (``str.isdigit`` also
    accepts '¹' or '²', which ``int`` refuses)."""
    return tag_value.isascii() and tag_value.isdigit()


#: What a pyfunc model needs besides weights.npz, written beside it.
SCALERS, EXAMPLE = "scalers.json", "input_example.json"
