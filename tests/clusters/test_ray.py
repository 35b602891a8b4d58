"""Sweeps onto a Ray cluster whose head runs as a separate process (``hydra/launcher=ray``
pointed at it by address): the jobs become FINISHED children of the sweep, and a group of
same-shape jobs is one Ray task whose children equal each config run as its own task."""

from __future__ import annotations

import time

import numpy as np
import pytest

from clusters.ray_head import ray_head  # noqa: F401 (the session fixture)
from clusters.test_slurm import GRID, by_config, curves, weights
from conftest import run_cli, sweep_runs

pytestmark = pytest.mark.slow


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
):
    """The 12-config grid in 2 shapes as 2 Ray tasks against the same grid as 12 tasks of one
    job each (``batch=false``: hydra-ray-launcher's run_job per config): every child FINISHED
    with the same curves, bit for bit, and the same weights."""
    took = {}
    for name, extra in (("alone", ["hydra.launcher.batch=false"]), ("grouped", [])):
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
    print(f"12 configs: {took['alone']:.1f} s as 12 Ray tasks, {took['grouped']:.1f} s as 2")
    assert "Submitting 12 jobs as 2 Ray tasks" in done.stdout + done.stderr
    grouped_store, alone_store = (f"sqlite:///{tmp_path}/{n}.db" for n in ("grouped", "alone"))
    grouped, single = by_config(grouped_store), by_config(alone_store)
    assert len(grouped) == 12 and grouped.keys() == single.keys()
    for config, child in grouped.items():
        assert child.info.status == "FINISHED", config
        assert curves(grouped_store, child) == curves(alone_store, single[config]), config
        mine, theirs = weights(child), weights(single[config])
        assert mine.keys() == theirs.keys()
        assert all(np.array_equal(mine[key], theirs[key]) for key in theirs), config
