"""How a cluster launcher cuts a sweep's jobs into tasks (``nnexp.sweep.cluster.plan_tasks``): by
group, at most ``configs_per_task`` configs a task, within half the task's memory, each task's
data one object and its folders absolute; a bound below 1 is refused in one line before any task
is submitted (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from conftest import sweep_runs
from nnexp.config import schema as config
from nnexp.run import memory
from nnexp.run.job import JobContext, prepare
from nnexp.sweep.batch import SweepJob
from nnexp.sweep.cluster import plan_tasks
from test_batched_sweeps import nnexp_train  # noqa: F401 (the fixture)


def sweep_jobs(tmp_path, overrides: list[list[str]]) -> list[SweepJob]:
    """Checked sweep jobs of these overrides, their folders relative to ``tmp_path``."""
    config.register_schemas()
    items = []
    with initialize_config_dir(str(config.CONF_DIR), version_base="1.3"):
        for num, job in enumerate(overrides):
            cfg = compose("config", job)
            ctx = JobContext(tmp_path, Path(str(num)), job, Path(), num)
            items.append(SweepJob(num, job, cfg, ctx, 1e6, prepare(cfg, ctx)))
    return items


def test_tasks_hold_one_group_each_within_the_bound_and_the_tasks_memory(tmp_path):
    grid = [[f"model.hidden={h}", f"seed={s}"] for h in (2, 3) for s in range(5)]
    items = sweep_jobs(tmp_path, grid)
    tasks = plan_tasks(items, 2, 1 << 40)
    assert [[item.num for item in task] for task in tasks] == [
        [0, 1], [2, 3], [4], [5, 6], [7, 8], [9],
    ]  # fmt: skip
    assert all(len({id(item.job.dataset) for item in task}) == 1 for task in tasks)
    assert all(item.ctx.output_dir == tmp_path / str(item.num) for item in items)
    assert all(item.ctx.sweep_dir == tmp_path for item in items)

    data = items[0].job.dataset
    rows = max(len(data.X_train), len(data.X_test))
    per_copy = memory.training_bytes(rows, data.d, 3, data.k, 1, None, 8)
    # a task's memory with room for 3 copies of width 3 in its half: 3 configs a task
    tasks = plan_tasks(items[5:], 500, 2 * 3 * per_copy)
    assert [[item.num for item in task] for task in tasks] == [[5, 6, 7], [8, 9]]


@pytest.mark.parametrize("launcher", ["slurm", "ray"])
def test_a_bad_task_bound_is_one_line(nnexp_train, store, capsys, launcher):  # noqa: F811
    code = nnexp_train(
        "-m", f"hydra/launcher={launcher}", "hydra.launcher.configs_per_task=0", "seed=0,1"
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "hydra.launcher.configs_per_task=0: give the most configs one" in err
    assert "Traceback" not in err
    parents, children = sweep_runs(store)
    assert parents[0].info.status == "FAILED" and children == []
