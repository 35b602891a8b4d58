"""A sweep's parent run: opened once before the first job, found again on resume, and closed with
a summary of its children (counts, best child, sweep_summary.csv, objective-by-key figure)."""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Run, RunTag
from mlflow.tracking import MlflowClient

from nnexp import console
from nnexp.errors import UserError
from nnexp.safety.privacy import redact, redact_values, reveal
from nnexp.tracking.model import has_model_inputs, log_model
from nnexp.tracking.queries import children, latest
from nnexp.tracking.repair import process_alive, why_dead
from nnexp.tracking.run import RunLog, code_tags, end_run, process_tags, record_failed_run
from nnexp.tracking.store import open_store, store_errors
from nnexp.tracking.sweep_file import SWEEP_FILE
from nnexp.tracking.vocabulary import (
    BEST_MODEL_TAG,
    BEST_RUN_TAG,
    BEST_TAG_PREFIX,
    COMMAND_TAG,
    CONFIG_HASH_TAG,
    ERROR_TAG,
    JOB_NUM_TAG,
    OUTPUT_DIR_TAG,
    PID_TAG,
    RESUMED_TAG,
    RUN_TYPE_TAG,
    SKIP_TAG_PREFIX,
    SWEEP_DIR_TAG,
    SWEEP_KEY_TAG,
    final_cost,
    latest_attempts,
)

#: A RUNNING child from another host is presumed lost on resume after this long without a metric.
RESUME_STALE_S = 3600.0
#: Seconds a stopped sweep waits for its children's live processes to end their own runs.
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class SweepInfo:
    """What a job needs to attach itself to its sweep; written into the sweep folder with the
    tracking URI's password redacted (a job takes it from its own command line or environment)."""

    parent_run_id: str
    tracking_uri: str
    experiment_id: str
    axes: dict[str, str]
    started_ms: int
    #: Git, version and host tags, computed once by the launching process for every job.
    code_tags: dict[str, str] = field(default_factory=dict)
    #: Whether the sweep logs its best child's pyfunc model on the parent at the end.
    log_model: bool = True

    def save(self, sweep_dir: Path) -> None:
        """Fill the sweep file claimed by ``sweep_folder.claim``, the tracking URI's password
        redacted (a job takes it from its own command line or environment)."""
        saved = {**asdict(self), "tracking_uri": redact(self.tracking_uri)}
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(saved, indent=1))

    @classmethod
    def load(cls, sweep_dir: Path) -> SweepInfo | None:
        """The sweep file of ``sweep_dir``, or None outside a tracked sweep."""
        path = sweep_dir / SWEEP_FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text())
        return cls(**{**saved, "tracking_uri": reveal(saved["tracking_uri"])})


def start_sweep(
    uri: str,
    experiment: str,
    sweep_dir: Path,
    axes: dict[str, str],
    sweep_key: str,
    command: str,
    resume: bool,
    log_model: bool,
) -> SweepInfo:
    """Create the store (checked by the caller) and the parent run (or reopen the last one with
    this sweep key when resuming) before any job starts, and fill the sweep file the caller
    claimed."""
    store = open_store(uri, experiment)
    client, experiment_id = store.client, store.experiment_id
    tags = code_tags()
    parent_id = _open_parent(
        client, experiment_id, sweep_dir, axes, sweep_key, command, resume, tags
    )
    client.set_tag(parent_id, SWEEP_DIR_TAG, str(sweep_dir))
    info = SweepInfo(parent_id, uri, experiment_id, axes, int(time.time() * 1000), tags, log_model)
    info.save(sweep_dir)
    return info


def _open_parent(
    client: MlflowClient,
    experiment_id: str,
    sweep_dir: Path,
    axes: dict[str, str],
    sweep_key: str,
    command: str,
    resume: bool,
    tags: Mapping[str, str],
) -> str:
    parent = _last_parent(client, experiment_id, sweep_key) if resume else None
    if parent is not None:
        dead = _refuse_if_live(client, experiment_id, parent)
        parent_id = parent.info.run_id
        now_ms = str(int(time.time() * 1000))
        client.log_batch(
            parent_id,
            tags=[RunTag(k, v) for k, v in {**tags, **process_tags(), RESUMED_TAG: now_ms}.items()],
        )
        client.update_run(parent_id, status="RUNNING")
        for run, reason in dead:
            end_run(client, run.info.run_id, "KILLED", f"its job died: {reason}")
        return parent_id
    parent_id = client.create_run(
        experiment_id,
        run_name=f"sweep {sweep_dir.parent.name} {sweep_dir.name} ({' × '.join(axes)})",
        tags=redact_values(
            {
                **tags,
                **process_tags(),
                RUN_TYPE_TAG: "sweep",
                SWEEP_KEY_TAG: sweep_key,
                COMMAND_TAG: command,
            }
        ),
    ).info.run_id
    RunLog(client, parent_id).params(axes)
    return parent_id


def _refuse_if_live(client: MlflowClient, experiment_id: str, parent: Run) -> list[tuple[Run, str]]:
    """The RUNNING children of a sweep to resume, each with why its process is gone; UserError
    if the sweep's own process or a child's may still run (resuming would train it twice)."""
    parent_id = parent.info.run_id
    if parent.info.status == "RUNNING" and process_alive(parent.data.tags, parent.info.start_time):
        raise UserError(
            f"sweep {parent_id} is still running (process {parent.data.tags[PID_TAG]}); "
            "wait for it to end or stop it, then resume"
        )
    now_ms = int(time.time() * 1000)
    dead = []
    for run in children(client, experiment_id, parent_id):
        if run.info.status != "RUNNING":
            continue
        reason = why_dead(client, run, RESUME_STALE_S, now_ms)
        if reason is None:
            raise UserError(
                f"run {run.info.run_id} of sweep {parent_id} may still be training; wait for it, "
                "or once its process is gone run `nnexp runs repair`, then resume"
            )
        dead.append((run, reason))
    return dead


def _last_parent(client: MlflowClient, experiment_id: str, sweep_key: str) -> Run | None:
    return latest(
        client,
        experiment_id,
        f"tags.`{SWEEP_KEY_TAG}` = '{sweep_key}' and tags.`{RUN_TYPE_TAG}` = 'sweep'",
    )


def _kill_orphans(client: MlflowClient, experiment_id: str, parent_id: str) -> None:
    """Children still RUNNING once their jobs have returned (or when their sweep is resumed)
    belong to jobs that died: KILLED."""
    for run in children(client, experiment_id, parent_id):
        if run.info.status == "RUNNING":
            end_run(client, run.info.run_id, "KILLED", "its job died before the run ended")


def record_lost_job(
    client: MlflowClient,
    info: SweepInfo,
    job_num: int,
    name: str,
    params: Mapping[str, object],
    tags: Mapping[str, str],
    status: str,
    reason: str,
) -> None:
    """A job the cluster lost ends ``status`` (FAILED or KILLED) with the cluster's reason: its
    child of this invocation if it opened one (left RUNNING, or KILLED by the cluster's SIGTERM),
    else a new child that says so."""
    mine = [
        run
        for run in children(client, info.experiment_id, info.parent_run_id)
        if run.data.tags.get(JOB_NUM_TAG) == str(job_num) and run.info.start_time >= info.started_ms
    ]
    if not mine:
        tags = {**tags, JOB_NUM_TAG: str(job_num)}
        record_failed_run(
            client, info.experiment_id, name, info.parent_run_id, tags, params, reason, status
        )
    elif mine[0].info.status != "FINISHED":
        end_run(client, mine[0].info.run_id, status, reason)


def find_finished(client: MlflowClient, experiment_id: str, config_hash: str) -> Run | None:
    """A FINISHED run of the experiment with this config hash (same config, data and code)."""
    return latest(
        client,
        experiment_id,
        f"tags.`{CONFIG_HASH_TAG}` = '{config_hash}' and attributes.status = 'FINISHED'",
    )


def record_skip(client: MlflowClient, parent_id: str, config_hash: str, run_id: str) -> None:
    """Note on the parent that the job with this config hash was satisfied by ``run_id``."""
    client.set_tag(parent_id, f"{SKIP_TAG_PREFIX}{config_hash}", run_id)


@dataclass
class ChildRow:
    """One job of the sweep as the summary shows it."""

    run_id: str
    status: str
    values: dict[str, str]
    train_cost: float
    test_cost: float
    epochs: str
    reason: str


#: The labels of a job whose run finished.
DONE = ("finished", "skipped")


@dataclass
class SweepSummary:
    """Counts by outcome, the rows, and the best finished child."""

    rows: list[ChildRow] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def best(self) -> ChildRow | None:
        """The finished job of the lowest final test cost (``_rank``), or None."""
        return min((r for r in self.rows if r.status in DONE), key=_rank, default=None)

    @property
    def failed(self) -> int:
        """Jobs that failed or were killed."""
        return self.counts.get("failed", 0) + self.counts.get("killed", 0)

    @property
    def results(self) -> list[ChildRow]:
        """The jobs that finished (in this sweep, or skipped as finished before) with a finite
        final test cost, in the rows' order: a failed or killed job's last cost is no result."""
        return [r for r in self.rows if r.status in DONE and math.isfinite(r.test_cost)]


def finish_sweep(info: SweepInfo, sweep_dir: Path) -> SweepSummary:
    """Summarise the children into the parent, log the best child's model on it (unless
    tracking.log_model=false) and end it FINISHED, or FAILED if any job failed; StoreFailed if
    the store fails."""
    with store_errors(info.tracking_uri):
        return _finish(info, sweep_dir)


def _finish(info: SweepInfo, sweep_dir: Path) -> SweepSummary:
    client = open_store(info.tracking_uri).client
    parent = client.get_run(info.parent_run_id)
    skipped = {
        key[len(SKIP_TAG_PREFIX) :]: value
        for key, value in parent.data.tags.items()
        if key.startswith(SKIP_TAG_PREFIX)
    }
    summary = summarize(client, info, skipped)
    _log_summary(client, info, summary, sweep_dir)
    status = "FAILED" if summary.failed else "FINISHED"
    if info.log_model and summary.best is not None:
        _log_best_model(client, info.parent_run_id, summary.best.run_id, status)
    client.set_terminated(info.parent_run_id, status)
    return summary


def _log_best_model(client: MlflowClient, parent_id: str, best_id: str, status: str) -> None:
    """The best child's pyfunc model, from the folder its job left, logged on the parent."""
    folder = Path(client.get_run(best_id).data.tags.get(OUTPUT_DIR_TAG, ""))
    if not has_model_inputs(folder):
        console.warning(
            f"no model logged on the sweep: the best run's folder {folder} is not readable "
            "here; run it alone (`nnexp reproduce` or `nnexp-train` with its overrides) for one"
        )
        return
    with mlflow.start_run(run_id=parent_id):
        log_model(folder)
        mlflow.set_tag(BEST_MODEL_TAG, best_id)
        mlflow.end_run(status)


def summarize(client: MlflowClient, info: SweepInfo, skipped: dict[str, str]) -> SweepSummary:
    """The latest attempt of each job (by config hash), labelled finished/failed/killed/skipped."""
    _kill_orphans(client, info.experiment_id, info.parent_run_id)
    latest = latest_attempts(children(client, info.experiment_id, info.parent_run_id))
    for config_hash, run_id in skipped.items():
        if config_hash not in latest:
            latest[config_hash] = client.get_run(run_id)
    summary = SweepSummary()
    for config_hash, run in latest.items():
        label = _label(run, config_hash in skipped and run.info.start_time < info.started_ms)
        summary.counts[label] = summary.counts.get(label, 0) + 1
        summary.rows.append(_row(run, label, info.axes))
    summary.rows.sort(key=_rank)
    return summary


def _rank(row: ChildRow) -> tuple[bool, float]:
    """Finished jobs first, by final test_cost; then the rest."""
    return (row.status not in DONE, row.test_cost if math.isfinite(row.test_cost) else math.inf)


def _label(run: Run, skipped: bool) -> str:
    if skipped:
        return "skipped"
    return {"FINISHED": "finished", "KILLED": "killed"}.get(run.info.status, "failed")


def _row(run: Run, label: str, axes: dict[str, str]) -> ChildRow:
    metrics, params = run.data.metrics, run.data.params
    return ChildRow(
        run_id=run.info.run_id,
        status=label,
        values={key: params.get(key, "") for key in axes},
        train_cost=final_cost(metrics, "train"),
        test_cost=final_cost(metrics, "test"),
        epochs=params.get("optim.epochs", ""),
        reason=run.data.tags.get(ERROR_TAG, ""),
    )


def _log_summary(
    client: MlflowClient, info: SweepInfo, summary: SweepSummary, sweep_dir: Path
) -> None:
    metrics = {
        f"children_{label}": summary.counts.get(label, 0)
        for label in ("finished", "failed", "killed", "skipped")
    }
    tags = {}
    if summary.best is not None:
        metrics["best_test_cost"] = summary.best.test_cost
        tags[BEST_RUN_TAG] = summary.best.run_id
        tags.update({f"{BEST_TAG_PREFIX}{key}": v for key, v in summary.best.values.items()})
    now = int(time.time() * 1000)
    client.log_batch(
        info.parent_run_id,
        metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
        tags=[RunTag(key, value) for key, value in tags.items()],
    )
    table = write_summary_csv(summary, info.axes, sweep_dir / "sweep_summary.csv")
    client.log_artifact(info.parent_run_id, str(table))
    results = summary.results
    if info.axes and results:
        from nnexp import plots  # matplotlib (~1 s of CPU) only for a sweep that gets this far

        figure = plots.objective_by_key(
            [row.values for row in results],
            [row.test_cost for row in results],
            list(info.axes),
            sweep_dir / "test_cost_by_key.png",
        )
        client.log_artifact(info.parent_run_id, str(figure))


def write_summary_csv(summary: SweepSummary, axes: dict[str, str], path: Path) -> Path:
    """One row per job: swept values, final costs, status, reason, run id."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*axes, "train_cost", "test_cost", "epochs", "status", "reason", "run_id"])
        for row in summary.rows:
            writer.writerow(
                [
                    *row.values.values(),
                    row.train_cost,
                    row.test_cost,
                    row.epochs,
                    row.status,
                    row.reason,
                    row.run_id,
                ]
            )
    return path


def abort_sweep(info: SweepInfo, status: str, reason: str) -> None:
    """End a parent whose sweep stopped before its end (an error, a stop signal), after its
    children still RUNNING: each ends itself once told to stop, so the ones whose process still
    lives on this host get STOP_GRACE_S to do so; the rest end KILLED here. StoreFailed if the
    store fails."""
    with store_errors(info.tracking_uri):
        _abort(info, status, reason)


def _abort(info: SweepInfo, status: str, reason: str) -> None:
    client = open_store(info.tracking_uri).client
    deadline = time.monotonic() + STOP_GRACE_S
    while True:
        running = [
            run
            for run in children(client, info.experiment_id, info.parent_run_id)
            if run.info.status == "RUNNING"
        ]
        alive = [
            run
            for run in running
            if run.data.tags.get(PID_TAG) != str(os.getpid())
            and process_alive(run.data.tags, run.info.start_time)
        ]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for run in running:
        end_run(client, run.info.run_id, "KILLED", f"its sweep stopped: {reason}")
    end_run(client, info.parent_run_id, status, reason)
