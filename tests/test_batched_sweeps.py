"""The default launcher (``hydra/launcher=nnexp``): same-shape jobs train as one batched
computation, each job still its own child run, equal bit for bit to the same config run alone;
failures stay isolated inside a group; a signal mid-group leaves the finished children FINISHED
and the rest KILLED with their points; resume re-runs only what is unfinished. Real Hydra, real
SQLite stores; sweeps run in-process (``nnexp.train.main``), a subprocess only for signals."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from conftest import (
    BIN,
    FAULT_EPOCHS,
    FAULT_EVERY,
    FAULT_JOB,
    clean_env,
    frozen_mid_job,
    metric_steps,
    mlflow_client,
    run_app,
    sweep_runs,
)
from nnexp import core
from nnexp.config import schema as config
from nnexp.run import memory
from nnexp.run.job import JobContext, prepare
from nnexp.sweep import groups
from nnexp.sweep.groups import split_to_fit

EPOCHS = 12


@pytest.fixture
def nnexp_train(tmp_path: Path, monkeypatch, store: str):
    """``nnexp-train ARGS`` run in this process from the test's folder into its store; returns
    the exit code and counts the batched core.train calls (their copies in ``calls``)."""
    calls: list[int] = []
    batched = core.train

    def counted(W1, *args, **kwargs):
        calls.append(W1.shape[0])
        return batched(W1, *args, **kwargs)

    monkeypatch.setattr(groups.core, "train", counted)
    sweeps = itertools.count()

    def run(*args: str) -> int:
        flags = [a for a in args if a.startswith("-")]
        overrides = [a for a in args if not a.startswith("-")]
        if "-m" in flags:  # relative to the launch folder: jobs still record absolute folders
            overrides.append(f"hydra.sweep.dir=multirun/{next(sweeps)}")
        done = run_app("nnexp-train", *flags, f"tracking.uri={store}", *overrides, cwd=tmp_path)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        return done.returncode

    run.calls = calls
    return run


def history(uri: str, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Every metric of the run: its (step, value) points in step order."""
    client = mlflow_client(uri)
    return {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        for key in client.get_run(run_id).data.metrics
    }


def weights(run) -> dict[str, np.ndarray]:
    """The run's weights.npz, from its output folder."""
    with np.load(Path(run.data.tags["nnexp.output_dir"]) / "weights.npz") as saved:
        return {key: saved[key] for key in saved.files}


def single(store: str, params: dict[str, str]):
    """The single run (no -m) whose params are ``params``."""
    client = mlflow_client(store)
    experiment = client.get_experiment_by_name("nnexp").experiment_id
    (run,) = [
        r
        for r in client.search_runs([experiment], "tags.`nnexp.run_type` = 'single'")
        if r.data.params == params
    ]
    return run


def assert_alone_equal(nnexp_train, store: str, child, fixed: list[str]) -> None:
    """The child's params, every curve point, status and weights equal the same config run alone
    with ``nnexp-train`` (no -m)."""
    overrides = [o for o in child.data.tags["mlflow.runName"].split() if "=" in o]
    swept = {"lr": "optim.lr", "l2": "regularization.l2", "seed": "seed", "hidden": "model.hidden"}
    alone_args = [f"{swept[k]}={v}" for k, v in (o.split("=", 1) for o in overrides)]
    code = nnexp_train(*fixed, *alone_args)
    assert code == (0 if child.info.status == "FINISHED" else 1)
    alone = single(store, child.data.params)
    assert alone.info.status == child.info.status
    assert alone.data.tags["nnexp.status"] == child.data.tags["nnexp.status"]
    assert alone.data.tags["nnexp.config_hash"] == child.data.tags["nnexp.config_hash"]
    assert history(store, child.info.run_id) == history(store, alone.info.run_id)
    if child.info.status == "FINISHED":
        got, want = weights(child), weights(alone)
        assert got.keys() == want.keys()
        for key in want:
            assert got[key].dtype == want[key].dtype and np.array_equal(got[key], want[key])


GRID = ["optim.lr=0.5,3", "regularization.l2=0,0.01", "seed=0,1"]


def test_a_grid_trains_in_one_call_and_children_equal_their_runs_alone(nnexp_train, store):
    fixed = [f"optim.epochs={EPOCHS}", "tracking.log_model=false"]
    assert nnexp_train("-m", *GRID, *fixed) == 0
    assert nnexp_train.calls == [8]
    parents, children = sweep_runs(store)
    assert len(children) == 8 and parents[0].info.status == "FINISHED"
    assert {c.info.status for c in children} == {"FINISHED"}
    parent_files = {a.path for a in mlflow_client(store).list_artifacts(parents[0].info.run_id)}
    assert "cost_curves_0-7.png" in parent_files
    for child in children:
        folder = Path(child.data.tags["nnexp.output_dir"])
        assert (folder / ".hydra" / "config.yaml").is_file()
        assert (folder / ".hydra" / "overrides.yaml").is_file()
        assert not (folder / "cost_curve.png").exists()  # one figure on the parent instead
        num = child.data.tags["nnexp.job_num"]
        assert folder.name == num
        paths = {a.path for a in mlflow_client(store).list_artifacts(child.info.run_id)}
        assert {"weights.npz", "config.yaml", "costs.csv", "overrides.yaml"} <= paths
        assert metric_steps(store, child.info.run_id, "test_cost") == list(range(EPOCHS + 1))
    by_name = {c.info.run_name: c for c in children}
    for name in ("lr=3 l2=0.01 seed=1", "lr=0.5 l2=0 seed=0"):
        assert_alone_equal(nnexp_train, store, by_name[name], fixed)


CASES = {
    "mini-batches, sum": ["dataset=xor", "optim.batch_size=2", "cost.reduction=sum"],
    "float32, seeds": ["model.dtype=float32", "train.seeds=2"],
    "a copy diverges": [
        "dataset=diabetes",
        "dataset.seed=0",  # one split for every seed: one group
        "cost.reduction=sum",
        "optim.lr=0.5,1e308",
    ],
    "data follow the seed": ["dataset=synthetic", "dataset.n=40", "optim.batch_size=8"],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_children_equal_their_runs_alone(nnexp_train, store, case):
    fixed = [f"optim.epochs={EPOCHS}", "tracking.log_model=false", *CASES[case]]
    grid = ["regularization.l2=0,0.01", "seed=0,1"]
    if not any(o.startswith("optim.lr=") for o in fixed):
        grid.append("optim.lr=0.5,2")
    code = nnexp_train("-m", *grid, *fixed)
    _, children = sweep_runs(store)
    assert len(children) == 8
    if case == "data follow the seed":
        assert nnexp_train.calls == [4, 4]  # one group per seed: its data differ
    else:
        assert nnexp_train.calls == [16 if "train.seeds=2" in fixed else 8]
    diverged = [c for c in children if c.data.tags["nnexp.status"] == "diverged"]
    assert code == (1 if diverged else 0)
    if case == "a copy diverges":
        assert len(diverged) == 4 and {c.data.params["optim.lr"] for c in diverged} == {"1e+308"}
        assert {c.info.status for c in diverged} == {"FAILED"}
        fixed = [o for o in fixed if not o.startswith("optim.lr=")]
        assert_alone_equal(nnexp_train, store, diverged[0], fixed)
        finished = next(c for c in children if c.info.status == "FINISHED")
        assert_alone_equal(nnexp_train, store, finished, fixed)
        return
    for child in children[:2]:
        assert_alone_equal(nnexp_train, store, child, fixed)


def test_a_config_failing_validation_fails_alone(nnexp_train, store):
    code = nnexp_train("-m", "model.hidden=0,2", "seed=0,1", f"optim.epochs={EPOCHS}")
    assert code == 1
    _, children = sweep_runs(store)
    status = {(c.data.params.get("model.hidden"), c.data.params.get("seed")): c for c in children}
    assert status[("0", "0")].info.status == status[("0", "1")].info.status == "FAILED"
    assert status[("2", "0")].info.status == status[("2", "1")].info.status == "FINISHED"
    assert nnexp_train.calls == [2]


@pytest.mark.slow
def test_resume_reruns_only_the_unfinished_configs_regrouped(nnexp_train, store):
    args = [
        "-m",
        "dataset=diabetes",
        "dataset.seed=0",
        "cost.reduction=sum",
        "optim.lr=0.5,1e308",
        "seed=0,1",
        f"optim.epochs={EPOCHS}",
        "tracking.log_model=false",
    ]
    assert nnexp_train(*args) == 1
    assert nnexp_train.calls == [4]
    assert nnexp_train(*args, "sweep.resume=true") == 1
    assert nnexp_train.calls == [4, 2]  # only the two diverged configs, as one group
    parents, _ = sweep_runs(store)
    assert len(parents) == 1
    assert parents[0].data.metrics["children_skipped"] == 2


def test_a_group_is_split_to_fit_in_free_memory(tmp_path):
    cfgs = []
    config.register_schemas()
    with initialize_config_dir(str(config.CONF_DIR), version_base="1.3"):
        for seed in range(5):
            cfgs.append(compose("config", [f"seed={seed}", "train.seeds=2"]))
    ctx = JobContext(tmp_path, tmp_path)
    jobs = [prepare(cfg, ctx) for cfg in cfgs]
    assert split_to_fit(jobs, list(range(5)), free=1 << 40) == [[0, 1, 2, 3, 4]]
    data = jobs[0].dataset
    rows = max(len(data.X_train), len(data.X_test))
    per_copy = memory.training_bytes(rows, data.d, 3, data.k, 1, None, 8)
    # room for 4 copies in half of the free memory: two jobs a chunk
    assert split_to_fit(jobs, list(range(5)), free=2 * 4 * per_copy) == [[0, 1], [2, 3], [4]]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_group_keeps_finished_children_and_kills_the_rest(tmp_path, store, signum):
    command = [
        str(BIN / "nnexp-train"),
        "-m",
        f"tracking.uri={store}",
        "model.hidden=2,3",
        "seed=0,1",
        *FAULT_JOB,
    ]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        victim = frozen_mid_job(process, tmp_path / "mlflow.db", job_num="2")
        process.send_signal(signum)
        process.send_signal(signal.SIGCONT)
        _, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, err
    parents, children = sweep_runs(store)
    assert parents[0].info.status == "KILLED"
    by_job = {c.data.tags["nnexp.job_num"]: c for c in children}
    assert by_job["0"].info.status == by_job["1"].info.status == "FINISHED"
    assert by_job["2"].info.run_id == victim
    for num in ("2", "3"):
        killed = by_job[num]
        assert killed.info.status == "KILLED" and killed.data.tags["nnexp.status"] == "killed"
        steps = metric_steps(store, killed.info.run_id, "train_cost")
        assert steps and steps == list(range(0, steps[-1] + 1, FAULT_EVERY))
        assert steps[-1] < FAULT_EPOCHS


@pytest.mark.slow
def test_two_workers_write_the_same_children(nnexp_train, store):
    fixed = [f"optim.epochs={EPOCHS}", "tracking.log_model=false"]
    assert nnexp_train("-m", "model.hidden=2,3", "seed=0,1", "hydra.launcher.n_jobs=2", *fixed) == 0
    parents, children = sweep_runs(store)
    assert parents[0].info.status == "FINISHED" and len(children) == 4
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["nnexp.pid"] for c in children}.isdisjoint(
        {parents[0].data.tags["nnexp.pid"]}
    )
    child = next(c for c in children if c.info.run_name == "hidden=3 seed=1")
    assert_alone_equal(nnexp_train, store, child, fixed)


def test_a_bad_worker_count_is_one_line(nnexp_train, store, capsys):
    assert nnexp_train("-m", "seed=0,1", "hydra.launcher.n_jobs=0") == 2
    err = capsys.readouterr().err
    assert "hydra.launcher.n_jobs=0: give a number of worker processes >= 1" in err
    assert "Traceback" not in err
    parents, children = sweep_runs(store)
    assert parents[0].info.status == "FAILED" and children == []
