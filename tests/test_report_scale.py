"""What keeps a report of thousands of runs cheap without changing what it says: each metric's
histories read in one query from a SQL store (the same curves as one request per run), and a
heatmap whose facet key has more than HEATMAP_PANELS values drawn as one panel, averaged over."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from nnexp.report.content import HEATMAP_PANELS, _heatmaps
from nnexp.report.records import RunRecord, cost_curves, histories, read_curves, record_of


def logged_runs(store: str) -> tuple[MlflowClient, list[RunRecord]]:
    """Three runs in the SQLite store ``store`` (its schema made once per worker): two single
    ones (one logs step 2 twice, the last wins) and a batched one (mean and std curves)."""
    client = MlflowClient(store)
    experiment = client.create_experiment("scale")
    curves = {
        "single": {"train_cost": [(0, 0.5), (1, 0.3), (2, 0.2)], "test_cost": [(0, 0.6), (2, 0.4)]},
        "again": {"train_cost": [(0, 0.5), (2, 0.9), (2, 0.1)], "test_cost": [(0, 0.7)]},
        "batched": {
            f"{split}_cost_{part}": [(step, 0.1 * (step + 1) + offset) for step in range(3)]
            for split, offset in (("train", 0.0), ("test", 0.05))
            for part in ("mean", "std")
        },
    }
    records = []
    for name, metrics in curves.items():
        run_id = client.create_run(experiment, run_name=name).info.run_id
        logged = [
            Metric(key, value, 1000 + order, step)
            for key, points in metrics.items()
            for order, (step, value) in enumerate(points)
        ]
        client.log_batch(run_id, metrics=logged)
        records.append(record_of(client.get_run(run_id)))
    return client, records


def test_bulk_histories_are_the_curves_one_request_per_run_gives(store, monkeypatch):
    client, records = logged_runs(store)
    expected = {r.run_id: cost_curves(client, r) for r in records}
    monkeypatch.setattr(client, "get_metric_history", None)  # never asked run by run
    read_curves(client, records)
    for record in records:
        assert record.curves.keys() == expected[record.run_id].keys() == {"train", "test"}
        for split, curve in record.curves.items():
            want = expected[record.run_id][split]
            assert np.array_equal(curve.steps, want.steps)
            assert np.array_equal(curve.values, want.values)
            assert (curve.std is None) == (want.std is None)
            assert curve.std is None or np.array_equal(curve.std, want.std)
    again = next(r for r in records if r.name == "again")
    assert again.curves["train"].values.tolist() == [0.5, 0.1]  # step 2's last value


def test_a_store_without_bulk_reads_is_asked_run_by_run(store):
    client, records = logged_runs(store)
    asked = []

    def get_metric_history(run_id, key):
        asked.append(run_id)
        return client.get_metric_history(run_id, key)

    plain = SimpleNamespace(get_metric_history=get_metric_history)
    run_ids = [r.run_id for r in records[:2]]
    found = histories(plain, run_ids, "train_cost")
    assert asked == run_ids
    bulk = histories(client, run_ids, "train_cost")
    for run_id in run_ids:
        assert all(map(np.array_equal, found[run_id], bulk[run_id]))


def grid_records(widths: dict[str, int]) -> list[RunRecord]:
    keys = list(widths)
    shape = [widths[k] for k in keys]
    records = []
    for index, values in enumerate(np.ndindex(*shape)):
        params = {k: str(v + 1) for k, v in zip(keys, values, strict=True)}
        cost = 0.01 * (1 + sum(values))
        records.append(
            RunRecord(
                f"r{index}", f"r{index}", "finished", params, {}, "", finals={"test_cost": cost}
            )
        )
    return records


def test_a_heatmap_has_a_panel_per_facet_value_up_to_the_limit_then_one(tmp_path):
    (tmp_path / "figures").mkdir()
    few = grid_records({"a": 2, "b": 3, "c": HEATMAP_PANELS})
    captions = [block.caption for block in _heatmaps(few, ["a", "b", "c"], tmp_path)]
    assert "one panel per `c`" in captions[0]  # a × b
    many = grid_records({"a": 2, "b": 3, "c": HEATMAP_PANELS + 1})
    captions = [block.caption for block in _heatmaps(many, ["a", "b", "c"], tmp_path)]
    assert "panel" not in captions[0].split("(no panels")[0]
    assert f"mean over `c` (no panels: `c` has {HEATMAP_PANELS + 1} values" in captions[0]
    assert "one panel per `b`" in captions[1] and "one panel per `a`" in captions[2]
