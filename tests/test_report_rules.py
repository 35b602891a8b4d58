"""The rules a report follows at scale and how it reads a run's metrics, in-process: which runs'
curves are read past CURVE_RUNS (whole settings, best and worst, within the limit), and how a
search result's metrics become final values, stds, per-seed replicates and best summaries."""

from __future__ import annotations

from types import SimpleNamespace

from nnexp.report.records import RunRecord, curve_sample, metric_names, record_of


def record(index: int, hidden: int, seed: int, test_cost: float) -> RunRecord:
    params = {"model.hidden": str(hidden), "seed": str(seed)}
    return RunRecord(
        f"r{index}", f"r{index}", "finished", params, {}, "", finals={"test_cost": test_cost}
    )


def test_curves_of_all_runs_up_to_the_limit():
    records = [record(i, i, 0, 0.1) for i in range(5)]
    assert curve_sample(records, 5) == records


def test_past_the_limit_whole_settings_best_and_worst_within_the_limit():
    # 30 settings (hidden 1..30) × 4 seeds; a setting's cost falls with hidden.
    records = [
        record(10 * hidden + seed, hidden, seed, 1.0 / hidden + 0.001 * seed)
        for hidden in range(1, 31)
        for seed in range(4)
    ]
    drawn = curve_sample(records, 40)
    settings = {r.params["model.hidden"] for r in drawn}
    assert len(drawn) <= 40 and len(drawn) == 4 * len(settings) == 40
    assert {"30", "1"} <= settings  # best and worst
    for hidden in settings:  # every seed of a drawn setting
        assert sum(r.params["model.hidden"] == hidden for r in drawn) == 4


def run(metrics: dict, params: dict) -> SimpleNamespace:
    info = SimpleNamespace(run_id="a" * 32, run_name="x", status="FINISHED")
    data = SimpleNamespace(metrics=metrics, params=params, tags={})
    return SimpleNamespace(info=info, data=data)


def test_a_batched_run_reads_as_means_stds_and_seeds():
    metrics = {
        "train_cost_mean": 0.2,
        "train_cost_std": 0.01,
        "test_cost_mean": 0.3,
        "test_cost_std": 0.02,
        "test_cost/seed_0": 0.28,
        "test_cost/seed_1": 0.32,
        "best_test_accuracy": 0.97,
        "best_test_accuracy_epoch": 40.0,
        "test_accuracy_mean": 0.95,
        "test_accuracy_std": 0.01,
    }
    found = record_of(run(metrics, {"train.seeds": "2", "dataset.seed": "3"}))
    assert found.finals == {"train_cost": 0.2, "test_cost": 0.3, "test_accuracy": 0.95}
    assert found.final_std("test") == 0.02
    assert found.replicates("test_cost") == {
        "dataset.seed=3,seed=0": 0.28,
        "dataset.seed=3,seed=1": 0.32,
    }
    assert found.best_of("test_accuracy") == (0.97, 40.0)
    assert metric_names([found]) == ["train_cost", "test_cost", "test_accuracy"]


def test_a_single_run_is_its_own_replicate():
    found = record_of(
        run({"train_cost": 0.1, "test_cost": 0.2}, {"seed": "4", "dataset.seed": "4"})
    )
    assert found.replicates("test_cost") == {"seed=4,dataset.seed=4": 0.2}
    assert found.replicates("test_accuracy") == {}
