"""SIGINT and SIGTERM within ``signals_raise``: raised as exceptions, and raised again when Python
swallowed the first one (an exception raised inside a weakref callback is only printed)."""

from __future__ import annotations

import os
import signal
import sys
import time
import weakref

import pytest
from hydra import compose, initialize_config_dir

from nnexp.config import schema as config
from nnexp.run.job import JobContext, prepare
from nnexp.run.recipe import fit
from nnexp.signals import Terminated, raise_pending, signals_raise

STOPS = [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)]


class Thing:
    """Something a weakref can watch."""


def signal_inside_a_weakref_callback(signum: int, stop: type[BaseException]) -> None:
    """Deliver ``signum`` while a weakref callback runs, as SQLAlchemy's clean-up can be: Python
    hands the handler's exception to ``sys.unraisablehook`` (which prints it) and goes on."""
    swallowed = []
    hook, sys.unraisablehook = sys.unraisablehook, swallowed.append
    try:
        thing = Thing()
        watch = weakref.ref(thing, lambda _: (os.kill(os.getpid(), signum), time.sleep(5)))
        del thing
    finally:
        sys.unraisablehook = hook
    assert watch() is None
    assert [type(s.exc_value) for s in swallowed] == [stop]


@pytest.mark.parametrize(("signum", "stop"), STOPS)
def test_a_swallowed_signal_is_raised_again_at_the_next_check(signum, stop):
    with pytest.raises(stop), signals_raise():
        signal_inside_a_weakref_callback(signum, stop)
        raise_pending()


@pytest.mark.parametrize(("signum", "stop"), STOPS)
def test_a_swallowed_signal_is_raised_again_at_the_blocks_end(signum, stop):
    with pytest.raises(stop), signals_raise():
        signal_inside_a_weakref_callback(signum, stop)
    raise_pending()


def test_a_signal_raised_once_is_not_raised_again_and_the_handlers_come_back():
    before = [signal.getsignal(signum) for signum, _ in STOPS]
    with pytest.raises(Terminated), signals_raise():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    raise_pending()
    with signals_raise():
        pass
    assert [signal.getsignal(signum) for signum, _ in STOPS] == before


class Log:
    """A run log that counts the points it receives."""

    def __init__(self) -> None:
        self.records = 0

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.records += 1


def test_training_stops_at_the_next_recorded_epoch_after_a_swallowed_signal(tmp_path):
    config.register_schemas()
    with initialize_config_dir(str(config.CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["optim.epochs=50", "tracking.log_every=10"])
    job = prepare(cfg, JobContext(launch_dir=tmp_path, output_dir=tmp_path))
    log = Log()
    with pytest.raises(KeyboardInterrupt), signals_raise():
        signal_inside_a_weakref_callback(signal.SIGINT, KeyboardInterrupt)
        fit(job, log, interactive=False)
    assert log.records == 0


@pytest.mark.parametrize(("signum", "stop"), STOPS)
def test_a_swallowed_signal_reaches_no_unraisable_hook_and_still_stops(signum, stop, monkeypatch):
    """Python would print it as "Exception ignored … Traceback"; the stop is pending instead."""
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    with pytest.raises(stop), signals_raise():
        thing = Thing()
        watch = weakref.ref(thing, lambda _: (os.kill(os.getpid(), signum), time.sleep(5)))
        del thing
        assert watch() is None
    assert reported == []


def test_a_stop_signal_during_a_database_write_waits_for_its_commit_and_the_run_ends_killed(
    store, monkeypatch
):
    """SIGTERM arrives while a batch of points is being written into an SQLite store: the write
    is not cut (cut inside its transaction, it once left the store locked by the process itself,
    and the run stayed RUNNING); the signal then stops the run, which ends KILLED."""
    from mlflow.tracking import MlflowClient

    from nnexp.tracking.run import open_run
    from nnexp.tracking.store import open_store

    opened = open_store(store, "signals")
    write, entered, written = MlflowClient.log_batch, [], []

    def signalled(self, run_id, metrics=(), *args, **kwargs):
        if metrics:
            entered.append(len(metrics))
        if len(entered) == 1 and not written:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)  # the handler runs in here, inside the write
            written.append(len(metrics))
        return write(self, run_id, metrics, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", signalled)
    with (
        pytest.raises(Terminated),
        open_run(opened.client, opened.experiment_id, "r", None, {}) as log,
    ):
        run_id = log.run_id
        log.metrics(0, {"train_cost": 1.0})
        log.flush()
    assert entered == written == [1]  # written by the first call, not again by the close
    run = opened.client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["nnexp.status"] == "killed"
    assert [m.value for m in opened.client.get_metric_history(run_id, "train_cost")] == [1.0]
