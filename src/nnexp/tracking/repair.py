"""`nnexp runs repair`: find runs left RUNNING by a process that died (SIGKILL, a lost node) and
end them KILLED, saying why."""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from nnexp.provenance import source as provenance
from nnexp.tracking.queries import search_all
from nnexp.tracking.run import end_run
from nnexp.tracking.vocabulary import HOST_TAG, PID_TAG, RESUMED_TAG, whole_number


@dataclass(frozen=True)
class DeadRun:
    """A RUNNING run whose process is gone, and how we know."""

    run: Run
    reason: str


def find_dead(
    client: MlflowClient, experiment_ids: list[str], stale_after_s: float
) -> list[DeadRun]:
    """RUNNING runs of these experiments whose process is gone: on this host, the recorded pid no
    longer runs (or was reused); elsewhere, nothing was logged for ``stale_after_s`` seconds."""
    dead = []
    now_ms = int(time.time() * 1000)
    for run in search_all(client, experiment_ids, "attributes.status = 'RUNNING'"):
        reason = why_dead(client, run, stale_after_s, now_ms)
        if reason is not None:
            dead.append(DeadRun(run, reason))
    return dead


def process_alive(tags: dict[str, str], started_ms: int) -> bool | None:
    """Whether the process recorded in a run's ``nnexp.host``/``nnexp.pid`` tags still runs:
    True or False on this host (pid and process start time), None elsewhere or when the tags
    are missing or malformed."""
    host, pid = tags.get(HOST_TAG), tags.get(PID_TAG, "")
    if host != provenance.host() or not whole_number(pid) or int(pid) == 0:
        return None
    started = tags.get(RESUMED_TAG, "")
    since = max(started_ms, int(started)) if whole_number(started) else started_ms
    return provenance.process_alive_since(int(pid), since)


def why_dead(client: MlflowClient, run: Run, stale_after_s: float, now_ms: int) -> str | None:
    """Why a RUNNING run's process is gone, or None while it may still run."""
    tags = run.data.tags
    host, pid = tags.get(HOST_TAG), tags.get(PID_TAG)
    alive = process_alive(tags, run.info.start_time)
    if alive is False:
        return f"process {pid} on {host} is gone"
    if alive is True:
        return None
    last = max([run.info.start_time, *(_last_metric_ms(client, run))])
    idle_s = (now_ms - last) / 1000
    if idle_s > stale_after_s:
        where = host or "an unknown host"
        return f"nothing logged for {idle_s / 60:.0f} min; its process on {where} is presumed lost"
    return None


def _last_metric_ms(client: MlflowClient, run: Run) -> list[int]:
    stamps = []
    for key in run.data.metrics:
        history = client.get_metric_history(run.info.run_id, key)
        stamps.extend(metric.timestamp for metric in history[-1:])
    return stamps


def mark_killed(client: MlflowClient, dead: DeadRun) -> None:
    """End the run KILLED with the reason in ``nnexp.error``."""
    end_run(
        client, dead.run.info.run_id, "KILLED", f"repaired by `nnexp runs repair`: {dead.reason}"
    )
