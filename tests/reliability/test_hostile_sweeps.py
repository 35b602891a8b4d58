"""Sweeps and repair never end what still lives: a sweep refused for a busy folder creates no
parent run, resuming a sweep whose process or children still run is refused (they stay RUNNING),
and `nnexp runs repair` refuses a negative age and survives any malformed pid tag."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import (
    FAULT_JOB,
    all_runs,
    assert_one_line_error,
    frozen_mid_job,
    mlflow_client,
    run_app,
    run_train_probe,
    sweep_runs,
)
from nnexp import plots
from nnexp.provenance import source as provenance
from nnexp.tracking.repair import process_alive
from reliability.test_faults import start


@given(st.text().filter(lambda pid: not (pid.isascii() and pid.isdigit() and int(pid) > 0)))
@example("¹")  # a digit to str.isdigit, not to int
def test_any_malformed_pid_tag_means_unknown(pid):
    tags = {"nnexp.host": provenance.host(), "nnexp.pid": pid, "nnexp.resumed_ms": pid}
    assert process_alive(tags, 0) is None


@pytest.mark.slow
def test_repair_survives_a_malformed_pid_and_refuses_a_negative_age(tmp_path, store):
    client = mlflow_client(store)
    experiment = client.create_experiment("nnexp")
    bad = client.create_run(experiment, tags={"nnexp.host": provenance.host(), "nnexp.pid": "x1"})
    repair = ["nnexp", "runs", "repair", "--tracking-uri", store]
    for age in ("-1", "nan", "inf"):
        assert_one_line_error(run_app(*repair, "--stale-after", age, cwd=tmp_path), "--stale-after")
    done = run_app(*repair, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert client.get_run(bad.info.run_id).info.status == "RUNNING"
    done = run_app(*repair, "--stale-after", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert client.get_run(bad.info.run_id).info.status == "KILLED"


@pytest.mark.slow
def test_a_sweep_refused_for_a_busy_folder_creates_no_parent(tmp_path, store):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / ".nnexp_sweep.json").write_text("{}")
    done = run_train_probe(
        "-m", f"tracking.uri={store}", f"hydra.sweep.dir={busy}",
        "optim.epochs=1", "optim.lr=0.5,1", cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(done, "another sweep already writes into")
    assert "mlflow loaded: False" in done.stdout
    assert all_runs(store) == []
    assert (busy / ".nnexp_sweep.json").read_text() == "{}"


@pytest.mark.slow
def test_resume_while_the_sweep_runs_is_refused_and_kills_nothing(tmp_path, store):
    sweep = ["-m", f"tracking.uri={store}", *FAULT_JOB, "model.hidden=48,49"]
    process = start(tmp_path, *sweep)
    try:
        live = frozen_mid_job(process, tmp_path / "mlflow.db", job_num="0")
        done = run_app("nnexp-train", *sweep, "sweep.resume=true", cwd=tmp_path)
        assert_one_line_error(done, "still running", "then resume")
        assert mlflow_client(store).get_run(live).info.status == "RUNNING"
        parents = [r for r in all_runs(store) if r.data.tags.get("nnexp.run_type") == "sweep"]
        assert len(parents) == 1
    finally:
        process.kill()
        process.communicate(timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("axis", ["dataset.target=zz,qq", "model.hidden=0,-1"])
def test_a_sweep_whose_jobs_all_fail_ends_its_parent_failed(tmp_path, store, axis):
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(f"{i},{i + 1},{i + 2}\n" for i in range(9)))
    done = run_app(
        "nnexp-train", "-m", f"tracking.uri={store}", "dataset=csv", "dataset.path=d.csv",
        "dataset.target=y", "optim.epochs=2", "tracking.log_model=false", axis, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    parents, children = sweep_runs(store)
    assert [p.info.status for p in parents] == ["FAILED"]
    assert sorted(c.info.status for c in children) == ["FAILED", "FAILED"]


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_the_sweep_figure_draws_the_finished_jobs_alone(tmp_path, store, monkeypatch):
    """Jobs of lr 1e308 diverge and end FAILED with a finite last cost (epoch 0's). The figure of
    final test cost by key draws the finished jobs alone: it drew the failed ones too, as
    results, and their lr of 1e308 on a log axis overflowed matplotlib and left the panel
    empty."""
    drawn = []
    draw = plots.objective_by_key

    def spy(values, objective, keys, path):
        drawn.append((values, objective))
        return draw(values, objective, keys, path)

    monkeypatch.setattr(plots, "objective_by_key", spy)
    sweep = ["optim.lr=0.5,1e308", "seed=0,1", "optim.epochs=3", "tracking.log_model=false"]
    done = run_app("nnexp-train", "-m", f"tracking.uri={store}", *sweep, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "could not summarise" not in done.stdout + done.stderr
    parents, children = sweep_runs(store)
    assert sorted(c.info.status for c in children) == ["FAILED"] * 2 + ["FINISHED"] * 2
    finished = [c.data.metrics["test_cost"] for c in children if c.info.status == "FINISHED"]
    [(values, objective)] = drawn
    assert [row["optim.lr"] for row in values] == ["0.5", "0.5"]
    assert sorted(objective) == sorted(finished)
    artifacts = mlflow_client(store).list_artifacts(parents[0].info.run_id)
    assert "test_cost_by_key.png" in {a.path for a in artifacts}
