"""One MLflow run's lifecycle and logging: open, log in batches, close FINISHED, FAILED (with the
reason as a tag) or KILLED (a stop signal), keeping every metric point logged so far."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from nnexp import console
from nnexp.errors import TrainingDiverged, UserError
from nnexp.provenance import machine
from nnexp.provenance import source as provenance
from nnexp.safety.privacy import redact, redact_values
from nnexp.signals import Terminated, signals_deferred, signals_raise
from nnexp.tracking.store import explain, store_errors
from nnexp.tracking.uri import is_server
from nnexp.tracking.vocabulary import (
    BLAS_THREADS_TAG,
    CODE_VERSION_TAG,
    ERROR_TAG,
    GIT_COMMIT_TAG,
    GIT_DIRTY_TAG,
    HOST_TAG,
    PARENT_RUN_TAG,
    PID_TAG,
    STATUS_TAG,
    VERSION_TAG_PREFIX,
)

#: MLflow's limits per log_batch call.
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
#: Metric points are sent at least this often while training (seconds).
FLUSH_SECONDS = 2.0


def code_tags() -> dict[str, str]:
    """Git commit and dirty flag, package versions and host: the same for every job of a sweep,
    so its launching process computes them once and hands them to the jobs."""
    code = provenance.code_version()
    tags = {
        GIT_COMMIT_TAG: code.commit,
        GIT_DIRTY_TAG: str(code.dirty).lower(),
        CODE_VERSION_TAG: code.label(),
        HOST_TAG: provenance.host(),
    }
    tags.update(
        {
            f"{VERSION_TAG_PREFIX}{name}": version
            for name, version in provenance.package_versions().items()
        }
    )
    return tags


def process_tags() -> dict[str, str]:
    """The pid (for `nnexp runs repair`), BLAS threads and machine record
    (``nnexp.provenance.machine``) of the process that logs the run."""
    return {
        PID_TAG: str(os.getpid()),
        BLAS_THREADS_TAG: str(provenance.blas_threads()),
        **machine.this_machine().tags(),
    }


class RunLog:
    """Logging into one open run: batched params, tags and metric points, and artifacts."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.run_id = client, run_id
        self._points: list[Metric] = []
        self._last_flush = time.monotonic()

    def _batch(self, **items: list) -> None:
        """One ``log_batch``, not cut by a stop signal on a database store (``uncut_writes``)."""
        with uncut_writes(self.client.tracking_uri):
            self.client.log_batch(self.run_id, **items)

    def params(self, params: Mapping[str, object]) -> None:
        """Log parameters (redacted), 100 per call."""
        items = [Param(key, value) for key, value in redact_values(params).items()]
        with store_errors(self.client.tracking_uri):
            for start in range(0, len(items), MAX_PARAMS):
                self._batch(params=items[start : start + MAX_PARAMS])

    def tags(self, tags: Mapping[str, object]) -> None:
        """Set tags (redacted), 100 per call."""
        items = [RunTag(key, value) for key, value in redact_values(tags).items()]
        with store_errors(self.client.tracking_uri):
            for start in range(0, len(items), MAX_TAGS):
                self._batch(tags=items[start : start + MAX_TAGS])

    def metrics(self, step: int, values: Mapping[str, float]) -> None:
        """Queue one point per metric at ``step``; sent 1000 at a time or every FLUSH_SECONDS."""
        stamp = int(time.time() * 1000)
        self._points.extend(Metric(key, float(value), stamp, step) for key, value in values.items())
        if len(self._points) >= MAX_METRICS or time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self, tags: Mapping[str, object] | None = None) -> None:
        """Send the queued metric points, and ``tags`` (redacted) in the same call as the last."""
        items = [RunTag(key, value) for key, value in redact_values(tags or {}).items()]
        with store_errors(self.client.tracking_uri):
            while self._points or items:
                batch, last = self._points[:MAX_METRICS], len(self._points) <= MAX_METRICS
                with uncut_writes(self.client.tracking_uri):  # and its points counted as sent
                    self.client.log_batch(self.run_id, metrics=batch, tags=items if last else [])
                    del self._points[:MAX_METRICS]
                items = [] if last else items
        self._last_flush = time.monotonic()

    def artifact(self, path: Path, folder: str | None = None) -> None:
        """Upload one file into the run's artifacts (under ``folder``)."""
        with store_errors(self.client.tracking_uri):
            self.client.log_artifact(self.run_id, str(path), folder)


def uncut_writes(uri: str) -> AbstractContextManager:
    """Around a write into the store at ``uri``: on a database store a stop signal raises once
    the write is done (``signals_deferred``; cut inside its transaction, it left SQLite locked by
    this very process, so the run could not be closed KILLED); a tracking server's request is
    cut at once, so Ctrl-C stays prompt when a server hangs."""
    return nullcontext() if is_server(uri) else signals_deferred()


@contextmanager
def open_run(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    parent_run_id: str | None,
    tags: Mapping[str, str],
) -> Iterator[RunLog]:
    """A run of ``client``'s store (also the fluent API's active run, for dataset and model)
    that ends FINISHED when the block completes, KILLED on a stop signal and FAILED on any
    other exception, with the reason in the ``nnexp.error`` tag; queued points go first.
    ``tags`` carry the code tags; the process tags are added here."""
    active = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=name,
        parent_run_id=parent_run_id,
        tags=redact_values({**tags, **process_tags()}),
    )
    log = RunLog(client, active.info.run_id)
    with signals_raise():  # also around the close: a second signal must not cut it short
        try:
            yield log
            log.flush()
        except (KeyboardInterrupt, Terminated) as err:
            _report_unmarked(
                log, "KILLED", _close(log, "KILLED", "killed", str(err) or "interrupted (Ctrl-C)")
            )
            raise
        except BaseException as err:
            status = "diverged" if isinstance(err, TrainingDiverged) else "failed"
            reason = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
            problem = _close(log, "FAILED", status, reason)
            if problem is not None and isinstance(err, UserError):
                raise type(err)(f"{err}; {_still_running(log, 'FAILED')}") from None
            _report_unmarked(log, "FAILED", problem)
            raise
        else:
            _report_unmarked(log, "FINISHED", _close(log, "FINISHED", "finished", None))


def _close(log: RunLog, status: str, label: str, reason: str | None) -> str | None:
    """End the run ``status`` (its queued points and the reason tags first, when they can still
    be written); None once it is ended, else why it could not be."""
    with suppress(Exception):  # the status below matters more than the points and tags
        log.flush(tags={STATUS_TAG: label} | ({ERROR_TAG: reason[:5000]} if reason else {}))
    try:
        mlflow.end_run(status=status)
    except Exception as err:
        return explain(err)
    return None


def _still_running(log: RunLog, status: str) -> str:
    return (
        f"run {log.run_id} stays RUNNING (it could not be marked {status}): "
        "`nnexp runs repair` ends it once the store works again"
    )


def _report_unmarked(log: RunLog, status: str, problem: str | None) -> None:
    if problem is not None:
        console.error(f"the store failed ({problem}); {_still_running(log, status)}")


def record_failed_run(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    parent_run_id: str | None,
    tags: Mapping[str, str],
    params: Mapping[str, object],
    reason: str,
    status: str = "FAILED",
) -> str:
    """A run that never trained: created, given its params and reason, and ended ``status``."""
    parent = {PARENT_RUN_TAG: parent_run_id} if parent_run_id else {}
    run_id = client.create_run(
        experiment_id, run_name=name, tags=redact_values({**tags, **process_tags(), **parent})
    ).info.run_id
    log = RunLog(client, run_id)
    log.params(params)
    log.tags({STATUS_TAG: status.lower(), ERROR_TAG: reason[:5000]})
    client.set_terminated(run_id, status)
    return run_id


def end_run(client: MlflowClient, run_id: str, status: str, reason: str) -> None:
    """End a run from outside its process: ``status`` (KILLED or FAILED) with the reason."""
    client.log_batch(
        run_id, tags=[RunTag(STATUS_TAG, status.lower()), RunTag(ERROR_TAG, redact(reason)[:5000])]
    )
    client.set_terminated(run_id, status)
