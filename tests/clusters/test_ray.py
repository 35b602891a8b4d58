"""Sweeps onto a Ray cluster whose head runs as a separate process (``hydra/launcher=ray``
pointed at it by address): the jobs become FINISHED children of the sweep, a group of
same-shape jobs is one Ray task whose children equal each config run as its own task, and a
task whose worker dies fails its group alone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from clusters.grid import CONFIGS, GRID, by_config, curves, weights
from clusters.ray_head import ray_head  # noqa: F401 (the session fixture)
from conftest import BIN, run_cli, sweep_runs, wait_for

#: One pytest-xdist worker for the module, so that the Ray head (its module fixture) starts once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


def test_sweep_onto_a_separate_ray_head(ray_head, tmp_path, store):  # noqa: F811
    done = run_cli(
        "nnexp-train",
        "-m",
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.address={ray_head.address}",
        f"tracking.uri={store}",
        "optim.epochs=20",
        "tracking.log_model=false",
        "model.hidden=2,3",
        cwd=tmp_path,
        env=ray_head.env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    parents, children = sweep_runs(store)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(c.data.params["model.hidden"] for c in children) == ["2", "3"]
    assert all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)


def test_a_group_is_one_ray_task_and_its_children_equal_each_config_run_as_its_own_task(
    ray_head,  # noqa: F811
    tmp_path,
    empty_store_file,
):
    """The 8-config grid in 2 shapes as 2 Ray tasks against the same grid as 8 tasks of one
    job each (``batch=false``: hydra-ray-launcher's run_job per config): every child FINISHED
    with the same curves, bit for bit, and the same weights."""
    took = {}
    for name, extra in (("alone", ["hydra.launcher.batch=false"]), ("grouped", [])):
        shutil.copyfile(empty_store_file, tmp_path / f"{name}.db")  # the schema made
        began = time.monotonic()
        done = run_cli(
            "nnexp-train",
            "-m",
            "hydra/launcher=ray",
            f"hydra.launcher.ray.init.address={ray_head.address}",
            f"hydra.sweep.dir={tmp_path / name}",
            f"tracking.uri=sqlite:///{tmp_path}/{name}.db",
            "tracking.log_model=false",
            *GRID,
            *extra,
            cwd=tmp_path,
            env=ray_head.env,
        )
        took[name] = time.monotonic() - began
        assert done.returncode == 0, done.stdout + done.stderr
    alone_s, grouped_s = took["alone"], took["grouped"]
    print(f"{CONFIGS} configs: {alone_s:.1f} s as {CONFIGS} Ray tasks, {grouped_s:.1f} s as 2")
    assert f"Submitting {CONFIGS} jobs as 2 Ray tasks" in done.stdout + done.stderr
    grouped_store, alone_store = (f"sqlite:///{tmp_path}/{n}.db" for n in ("grouped", "alone"))
    grouped, single = by_config(grouped_store), by_config(alone_store)
    assert len(grouped) == CONFIGS and grouped.keys() == single.keys()
    for config, child in grouped.items():
        assert child.info.status == "FINISHED", config
        assert curves(grouped_store, child) == curves(alone_store, single[config]), config
        mine, theirs = weights(child), weights(single[config])
        assert mine.keys() == theirs.keys()
        assert all(np.array_equal(mine[key], theirs[key]) for key in theirs), config


def task_workers() -> list[int]:
    """The pids of this machine's Ray workers running an nnexp task (titled ``ray::ray_task``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::ray_task"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_a_task_whose_worker_dies_fails_its_group_alone(ray_head, tmp_path, store):  # noqa: F811
    """Two groups (50 and 3,000,000 epochs): once the short one has finished and the long one's
    children stream their points, its worker is killed (SIGKILL, by pid): its configs end FAILED
    with Ray's reason, the short group's FINISHED, the command exits 1 with one `lost:` line per
    lost config."""
    process = subprocess.Popen(
        [
            str(BIN / "nnexp-train"),
            "-m",
            "hydra/launcher=ray",
            f"hydra.launcher.ray.init.address={ray_head.address}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"tracking.uri={store}",
            "tracking.log_model=false",
            "tracking.live_after=0",
            "tracking.log_every=100",
            "optim.epochs=50,3000000",
            "optim.lr=0.5,1",
        ],
        cwd=tmp_path,
        env=ray_head.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def long_group_streaming() -> list[int]:
        _, children = sweep_runs(store) if (tmp_path / "mlflow.db").exists() else ([], [])
        done = [c for c in children if c.info.status == "FINISHED"]
        running = [
            c for c in children if c.info.status == "RUNNING" and c.data.metrics.get("train_cost")
        ]
        return task_workers() if len(done) == 2 and len(running) == 2 else []

    try:
        (worker,) = wait_for(long_group_streaming, timeout=300, every=1.0)
        os.kill(worker, signal.SIGKILL)
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 1, out + err
    assert "Traceback" not in out + err
    lost = [line for line in err.splitlines() if " lost: " in line]
    assert len(lost) == 2 and all("Ray task" in line for line in lost), err
    _, children = sweep_runs(store)
    by_epochs = {}
    for child in children:
        by_epochs.setdefault(child.data.params["optim.epochs"], []).append(child)
    assert [c.info.status for c in by_epochs["50"]] == ["FINISHED"] * 2
    assert [c.info.status for c in by_epochs["3000000"]] == ["FAILED"] * 2
    assert all("Ray task" in c.data.tags["nnexp.error"] for c in by_epochs["3000000"])
