"""A sweep onto a Ray cluster whose head runs as a separate process (``hydra/launcher=ray``
pointed at it by address): the jobs become FINISHED children of the sweep."""

from __future__ import annotations

import pytest

from clusters.ray_head import ray_head  # noqa: F401 (the session fixture)
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
