"""``nnexp reproduce RUN_ID``: retrain a logged run from its resolved config.yaml into a new run
tagged ``nnexp.reproduces=RUN_ID``, in a process pinned to the run's recorded OpenBLAS kernel,
numpy SIMD loops and BLAS thread count (``nnexp.provenance.machine``), then compare weights and
cost curves value by value (``nnexp.reproduce.verdict``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from threadpoolctl import threadpool_limits

from nnexp.config import schema as config
from nnexp.config.hydra_errors import hydra_error_line
from nnexp.errors import UserError
from nnexp.provenance import machine
from nnexp.provenance import source as provenance
from nnexp.reproduce.verdict import deviation
from nnexp.run.folders import discard_unused_output
from nnexp.run.job import JobContext
from nnexp.run.recipe import train
from nnexp.run.weights import check_stored_weights, read_stored_weights
from nnexp.safety.logged_yaml import read_mapping
from nnexp.tracking.uri import is_server
from nnexp.tracking.vocabulary import (
    BLAS_THREADS_TAG,
    CODE_VERSION_TAG,
    ERROR_TAG,
    GIT_COMMIT_TAG,
    REPRODUCES_TAG,
    RUN_TYPE_TAG,
    VERSION_TAG_PREFIX,
    whole_number,
)

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class Difference:
    """One compared array or metric: its name, how it differs (None when identical) and by how
    much (``verdict.deviation``)."""

    name: str
    difference: str | None
    deviation: float = 0.0


@dataclass(frozen=True)
class Reproduction:
    """The new run, each compared value's difference, why the bits may differ (one line per
    fact of the machine that could not be pinned) and the float type both trained in."""

    run_id: str
    differences: list[Difference]
    reasons: list[str]
    dtype: str


def load_run(client: MlflowClient, run_id: str) -> Run:
    """The run to reproduce: it exists, trained (has metrics) and FINISHED."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise UserError(f"no run with id {run_id} in the store {client.tracking_uri}") from None
    if run.data.tags.get(RUN_TYPE_TAG) == "sweep":
        raise UserError(f"run {run_id} is a sweep's parent; reproduce one of its child runs")
    if not run.data.metrics:
        raise UserError(f"run {run_id} has no metrics (it never trained); nothing to reproduce")
    if run.info.status != "FINISHED":
        reason = run.data.tags.get(ERROR_TAG, "")
        raise UserError(
            f"run {run_id} ended {run.info.status}{f' ({reason[:200]})' if reason else ''}; "
            "only finished runs can be reproduced"
        )
    return run


def provenance_warnings(run: Run) -> list[str]:
    """How this checkout and its packages differ from those the run recorded."""
    tags, here = run.data.tags, provenance.code_version()
    warnings = []
    logged_code = tags.get(CODE_VERSION_TAG, tags.get(GIT_COMMIT_TAG, "unknown"))
    if logged_code != here.label():
        warnings.append(
            f"the run was trained by code {logged_code}, this checkout is {here.label()}"
        )
    for name, version in provenance.package_versions().items():
        logged = tags.get(f"{VERSION_TAG_PREFIX}{name}")
        if logged is not None and logged != version:
            warnings.append(f"the run used {name} {logged}, this environment has {version}")
    return warnings


def logged_config(client: MlflowClient, run: Run, uri: str, folder: Path) -> DictConfig:
    """The run's resolved config.yaml as a typed config, pointed at ``uri`` and the run's
    experiment, with resume off (it would skip the retraining)."""
    from nnexp.tracking.store import store_errors

    run_id, artifacts = run.info.run_id, run.info.artifact_uri
    if artifacts.startswith("mlflow-artifacts:") and not is_server(uri):
        raise UserError(
            f"run {run_id} keeps its artifacts on a tracking server ({artifacts}), and only "
            "that server can hand them out: pass its address, --tracking-uri http://HOST:PORT"
        )
    with store_errors(uri):
        if "config.yaml" not in {entry.path for entry in client.list_artifacts(run_id)}:
            raise UserError(
                f"run {run_id} has no config.yaml artifact; only runs of nnexp-train can "
                "be reproduced"
            )
        path = client.download_artifacts(run_id, "config.yaml", str(folder))
    what = f"run {run.info.run_id}'s config.yaml"
    loaded = read_mapping(Path(path), what)
    for section in ("tracking", "sweep"):
        if not isinstance(loaded.get(section), dict):
            raise UserError(f"{what} has no {section} section; it was not written by nnexp-train")
    experiment = client.get_experiment(run.info.experiment_id).name
    loaded["tracking"].update(uri=uri, experiment=experiment)
    loaded["sweep"]["resume"] = False
    config.register_schemas()
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(config.Config), loaded)
    except OmegaConfBaseException as err:
        raise UserError(
            f"{what} does not fit this nnexp's config (written by another version, or edited): "
            f"{hydra_error_line(err)}"
        ) from None
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UserError(f"{what} lacks {', '.join(missing[:3])}; it was written by another version")
    return cfg


def recorded_threads(run: Run) -> int | None:
    """The BLAS thread count the run recorded (None if it recorded none)."""
    recorded = run.data.tags.get(BLAS_THREADS_TAG, "")
    return int(recorded) if whole_number(recorded) and int(recorded) > 0 else None


def deterministic_run(run: Run) -> bool:
    """Whether the run was trained with model.deterministic=true."""
    return run.data.params.get("model.deterministic", "").lower() == "true"


def retrain(cfg: DictConfig, run: Run, output_root: Path, threads: int | None) -> str:
    """Train ``cfg`` as a new single run tagged nnexp.reproduces, with ``threads`` BLAS threads
    (None: as they are); returns the new run id."""
    output_root.mkdir(parents=True, exist_ok=True)
    output_dir = Path(tempfile.mkdtemp(prefix=f"{run.info.run_id[:8]}-", dir=output_root))
    ctx = JobContext(launch_dir=Path.cwd(), output_dir=output_dir)
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            outcome = train(cfg, ctx, extra_tags={REPRODUCES_TAG: run.info.run_id})
    except BaseException:
        discard_unused_output(output_dir, Path.cwd())
        raise
    return outcome.run_id


def machine_reasons(run: Run, pin: bool) -> list[str]:
    """Why this process cannot compute run ``run``'s bits: one line per fact of its recorded
    machine that differs here. With ``pin``, the process is first restarted with the recorded
    OpenBLAS kernel and numpy SIMD loops where this CPU has them (``pinned_environment``); a
    deterministic run's process is restarted on the baseline even without."""
    recorded, here = machine.Machine.from_tags(run.data.tags), machine.this_machine()
    threads, deterministic = recorded_threads(run), deterministic_run(run)
    if pin and recorded is not None:
        machine.restart_with(
            machine.pinned_environment(recorded, here, machine.cpu_flags(), os.environ)
        )
    elif deterministic:
        machine.restart_with(machine.baseline_environment(here, os.environ))
    reasons = []
    if not pin and not deterministic and threads not in (None, provenance.blas_threads()):
        reasons.append(f"BLAS threads {provenance.blas_threads()} here, {threads} recorded")
    if recorded is None:
        return [
            *reasons,
            f"run {run.info.run_id} recorded no machine (made before nnexp recorded one), so "
            "only its BLAS thread count is pinned",
        ]
    return reasons + machine.differences(recorded, here, machine.cpu_flags())


def reproduce(
    client: MlflowClient, run_id: str, warn: Callable[[str], None], pin: bool = True
) -> Reproduction:
    """Retrain run ``run_id`` into a new run (its files under outputs/reproduce/), pinned as
    ``machine_reasons`` says and to the recorded BLAS thread count (with ``pin``), after passing
    each provenance warning and each reason the bits may differ to ``warn``."""
    run = load_run(client, run_id)
    reasons = machine_reasons(run, pin)
    with tempfile.TemporaryDirectory(prefix="nnexp-reproduce-") as scratch:
        cfg = logged_config(client, run, client.tracking_uri, Path(scratch))
        path = _download_weights(client, run_id, Path(scratch) / "checked")
        check_stored_weights(path, _stored_where(run_id), int(cfg.model.hidden))
        for warning in provenance_warnings(run):
            warn(warning)
        for reason in reasons:
            warn(f"not bit for bit: {reason}")
        threads = recorded_threads(run) if pin else None
        new = retrain(cfg, run, Path.cwd() / "outputs" / "reproduce", threads)
        differences = compare(client, run_id, new, Path(scratch))
        return Reproduction(new, differences, reasons, cfg.model.dtype.value)


def compare(client: MlflowClient, original: str, new: str, folder: Path) -> list[Difference]:
    """Weights (every array of weights.npz) and every metric's history, original vs new."""
    arrays = [_weights(client, run_id, folder / run_id) for run_id in (original, new)]
    metrics = [_histories(client, run_id) for run_id in (original, new)]
    return [
        Difference(name, _array_difference(a, b), deviation(a, b))
        for name, a, b in [*_pairs(*arrays), *_pairs(*metrics)]
    ]


def _stored_where(run_id: str) -> str:
    return f"run {run_id}'s weights.npz"


def _download_weights(client: MlflowClient, run_id: str, folder: Path) -> Path:
    """The run's weights.npz downloaded into ``folder``; one line when the run has none."""
    from nnexp.tracking.store import store_errors

    folder.mkdir(parents=True)
    with store_errors(client.tracking_uri):
        if "weights.npz" not in {entry.path for entry in client.list_artifacts(run_id)}:
            raise UserError(
                f"{_stored_where(run_id)} is missing from its artifacts (deleted?); "
                "without it the run cannot be compared"
            )
        return Path(client.download_artifacts(run_id, "weights.npz", str(folder)))


def _weights(client: MlflowClient, run_id: str, folder: Path) -> dict[str, np.ndarray]:
    path = _download_weights(client, run_id, folder)
    return read_stored_weights(path, _stored_where(run_id))


def _histories(client: MlflowClient, run_id: str) -> dict[str, np.ndarray]:
    """Each metric as an array of (step, value) rows in step order."""
    run = client.get_run(run_id)
    return {
        key: np.array(
            sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)), float
        )
        for key in run.data.metrics
    }


def _pairs(
    first: dict[str, np.ndarray], second: dict[str, np.ndarray]
) -> Iterator[tuple[str, np.ndarray | None, np.ndarray | None]]:
    for name in sorted(set(first) | set(second)):
        yield name, first.get(name), second.get(name)


def _array_difference(a: np.ndarray | None, b: np.ndarray | None) -> str | None:
    """None when bit-identical, else what differs (presence, shape, or the largest |Δ|)."""
    if a is None or b is None:
        return "only in the new run" if a is None else "missing from the new run"
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    if a.dtype == b.dtype and a.tobytes() == b.tobytes():
        return None
    return f"largest |Δ| = {np.nanmax(np.abs(a.astype(float) - b.astype(float))):.3g}"
