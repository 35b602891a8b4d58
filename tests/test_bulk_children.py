"""A batched sweep group that ends before ``tracking.live_after`` writes its children in one
transaction of the SQL store (``nnexp.private_api.write_runs_in_bulk``); every field of such a
child reads back through MLflow's public API equal to the same child written by the public
client (a group opened live, ``tracking.live_after=0``). Real Hydra, a real SQLite store,
in-process sweeps."""

from __future__ import annotations

import contextlib
import contextvars
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN, clean_env, metric_steps, mlflow_client, sweep_runs
from nnexp import private_api, train

SWEEP = [
    "dataset=diabetes",
    "dataset.seed=0",  # one split for every seed: one group
    "cost.reduction=sum",
    "optim.lr=0.5,1e308",  # the 1e308 copies diverge: FAILED children with non-finite points
    "regularization.l2=0,0.01",
    "seed=0,1",
    "optim.epochs=12",
    "tracking.log_model=false",
]
#: Tags that name the sweep, the job's folder or when it ran: they differ between two sweeps.
PER_SWEEP = {"mlflow.parentRunId", "nnexp.output_dir", "nnexp.sweep_dir"}


@pytest.fixture
def nnexp_train(tmp_path: Path, monkeypatch, store: str):
    """``nnexp-train -m ARGS`` in this process into the test's store; the exit code."""
    monkeypatch.chdir(tmp_path)
    for name in ("HYDRA_FULL_ERROR", "MLFLOW_ENABLE_TELEMETRY", "DO_NOT_TRACK"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["nnexp-train", "-m", f"tracking.uri={store}", *args])
        with pytest.raises(SystemExit) as ended:
            contextvars.copy_context().run(train.main)
        return ended.value.code

    return run


@pytest.fixture
def bulk_calls(monkeypatch) -> list[int]:
    """The number of runs of each call to ``private_api.write_runs_in_bulk``, made as it is."""
    calls = []
    write = private_api.write_runs_in_bulk

    def counted(client, experiment_id, runs, upload=None):
        calls.append(len(runs))
        return write(client, experiment_id, runs, upload)

    monkeypatch.setattr(private_api, "write_runs_in_bulk", counted)
    return calls


def test_children_written_in_bulk_equal_those_written_by_the_public_client(
    nnexp_train, store, bulk_calls
):
    assert nnexp_train(*SWEEP, "tracking.experiment=bulk") == 1  # the diverged configs failed
    assert 8 in bulk_calls
    written = len(bulk_calls)
    assert nnexp_train(*SWEEP, "tracking.experiment=public", "tracking.live_after=0") == 1
    assert len(bulk_calls) == written or set(bulk_calls[written:]) == {0}  # no bulk: opened live
    client = mlflow_client(store)
    runs = {}
    for experiment in ("bulk", "public"):
        _, children = sweep_runs(store, experiment)
        runs[experiment] = {c.info.run_name: c for c in children}
    assert runs["bulk"].keys() == runs["public"].keys() and len(runs["bulk"]) == 8
    statuses = {c.info.status for c in runs["bulk"].values()}
    assert statuses == {"FINISHED", "FAILED"}
    for name, want in runs["public"].items():
        got = runs["bulk"][name]
        for field in ("status", "lifecycle_stage", "user_id", "run_name"):
            assert getattr(got.info, field) == getattr(want.info, field), (name, field)
        assert got.info.start_time <= got.info.end_time
        assert got.data.params == want.data.params
        assert {k: v for k, v in got.data.tags.items() if k not in PER_SWEEP} == {
            k: v for k, v in want.data.tags.items() if k not in PER_SWEEP
        }
        assert got.data.metrics.keys() == want.data.metrics.keys()
        for key in want.data.metrics:
            points = [
                [(m.step, repr(m.value)) for m in client.get_metric_history(run.info.run_id, key)]
                for run in (got, want)
            ]
            assert points[0] == points[1] and points[0], (name, key)
            assert repr(got.data.metrics[key]) == repr(want.data.metrics[key]), (name, key)
        inputs = [[(i.dataset, i.tags) for i in run.inputs.dataset_inputs] for run in (got, want)]
        assert inputs[0] == inputs[1] and inputs[0]
        files = [
            sorted(a.path for a in client.list_artifacts(run.info.run_id)) for run in (got, want)
        ]
        assert files[0] == files[1]
        if got.info.status == "FINISHED":
            assert {"weights.npz", "config.yaml", "costs.csv", "overrides.yaml"} <= set(files[0])
    for query, order in (
        ("metrics.test_cost < 1e9", ["metrics.train_cost DESC"]),
        ("params.`optim.lr` = '0.5' and tags.`nnexp.status` = 'finished'", ["params.seed DESC"]),
        ("attributes.status = 'FAILED'", ["attributes.run_name"]),
    ):
        found = {
            experiment: [
                r.info.run_name
                for r in client.search_runs(
                    [client.get_experiment_by_name(experiment).experiment_id],
                    f"{query} and tags.`nnexp.run_type` = 'child'",
                    order_by=order,
                )
            ]
            for experiment in ("bulk", "public")
        }
        assert found["bulk"] == found["public"] and found["bulk"], query


def finished_children(db: Path) -> int:
    """FINISHED child runs in the SQLite file (read-only; 0 while it is missing or locked)."""
    try:
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        with contextlib.closing(reader):
            return reader.execute(
                "SELECT count(*) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                "WHERE t.key = 'mlflow.parentRunId' AND r.status = 'FINISHED'"
            ).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_a_signal_while_a_bulk_group_trains_writes_its_children_killed_with_their_points(
    tmp_path, store
):
    every, epochs = 10, 3000
    command = [
        str(BIN / "nnexp-train"), "-m", f"tracking.uri={store}", "seed=0,1",
        # the first group (40 points) ends in a fraction of a second; the second (5000 points, a
        # few ms an epoch) takes seconds, so the signal lands while it trains
        "dataset=synthetic", "dataset.seed=0", "dataset.n=40,5000",
        f"optim.epochs={epochs}", f"tracking.log_every={every}", "tracking.log_model=false",
        "tracking.live_after=100000",  # no child opens live: both groups are written in bulk
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 600
        while finished_children(tmp_path / "mlflow.db") < 2 and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.05)
        time.sleep(0.5)  # the second group (5000 points) is training: 3000 epochs take seconds
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    parents, children = sweep_runs(store)
    assert parents[0].info.status == "KILLED" and len(children) == 4
    for child in children:
        points = child.data.params["dataset.n"]
        assert child.info.status == ("FINISHED" if points == "40" else "KILLED"), points
        steps = metric_steps(store, child.info.run_id, "train_cost")
        if points == "5000":
            assert child.data.tags["nnexp.status"] == "killed"
            assert steps and steps == list(range(0, steps[-1] + 1, every))
            assert steps[-1] < epochs


def test_a_group_of_more_than_100_children_never_streams(nnexp_train, store, bulk_calls):
    overrides = ["seed=range(0,101)", "optim.epochs=3", "tracking.log_model=false"]
    assert nnexp_train(*overrides, "tracking.live_after=0") == 0  # live at once, were it small
    assert 101 in bulk_calls
    _, children = sweep_runs(store)
    assert len(children) == 101 and {c.info.status for c in children} == {"FINISHED"}
