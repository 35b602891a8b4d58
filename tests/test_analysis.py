"""Reading runs back for analysis, on a small real SQLite store written with MLflow's client: two
sweeps of known final costs and a batched run. `nnexp runs list` filters, sorts and groups them
(the group intervals checked by hand), `nnexp diff` shows only what differs, the report gains its
statistics sections and stays byte-identical; bad input is one line. The command line runs once
per command in a subprocess; everything else in-process."""

from __future__ import annotations

import csv
import io
import json
import math
from itertools import product

import pytest

from conftest import mlflow_client, run_app

pytestmark = pytest.mark.slow

EXPERIMENT, BATCHED = "tiny", "batched"
STEPS = (0, 10, 20)
#: t_{0.975, 5} from a printed table.
T5 = 2.570581836614739


def final_cost(lr: str, l2: str, seed: int) -> float:
    """The test cost a child ends at: 0.1 per lr step, 0.01 for λ > 0, 0.001 per seed."""
    return 0.1 * ["0.5", "1", "2"].index(lr) + 0.1 + 0.01 * (l2 != "0") + 0.001 * seed


def log_run(client, experiment: str, name: str, params: dict, tags: dict, metrics: dict) -> str:
    """A finished run whose metric ``k`` falls linearly to ``metrics[k]`` over STEPS."""
    from mlflow.entities import Metric, Param

    run = client.create_run(experiment, run_name=name, tags=tags)
    points = [
        Metric(key, final * (3 - index), 0, step)
        for key, final in metrics.items()
        for index, step in enumerate(STEPS)
    ]
    params_list = [Param(k, v) for k, v in params.items()]
    client.log_batch(run.info.run_id, metrics=points, params=params_list)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, empty_store_file) -> dict:
    """Sweep A: lr 0.5, 1 × λ 0, 1e-4 × seeds 0–2; sweep B: lr 2 × the same; and in another
    experiment one batched run of 3 seeds. Returns the store's uri, folder and run ids."""
    import shutil

    folder = tmp_path_factory.mktemp("tiny")
    shutil.copyfile(empty_store_file, folder / "mlflow.db")
    uri = f"sqlite:///{folder}/mlflow.db"
    client = mlflow_client(uri)
    # Artifacts beside the store: by default they go to ./mlruns of this process, the checkout.
    artifacts = (folder / "mlruns").as_uri()
    experiment = client.create_experiment(EXPERIMENT, artifact_location=f"{artifacts}/tiny")
    found: dict = {"uri": uri, "folder": folder, "children": {}}
    for sweep, lrs in (("A", ["0.5", "1"]), ("B", ["2"])):
        parent = client.create_run(experiment, run_name=sweep, tags={"nnexp.run_type": "sweep"})
        parent_id = parent.info.run_id
        client.log_param(parent_id, "optim.lr", ",".join(lrs))
        client.log_param(parent_id, "regularization.l2", "0,0.0001")
        client.set_terminated(parent_id)
        found[sweep] = parent_id
        for lr, l2, seed in product(lrs, ["0", "0.0001"], range(3)):
            params = {"optim.lr": lr, "regularization.l2": l2, "seed": str(seed)}
            params |= {"model.hidden": "4", "dataset.n_train": "10"}
            tags = {
                "mlflow.parentRunId": parent_id,
                "nnexp.run_type": "child",
                "nnexp.status": "finished",
                "nnexp.config_hash": f"{lr}-{l2}-{seed}",
            }
            test = final_cost(lr, l2, seed)
            name = f"lr={lr} l2={l2} seed={seed}"
            run_id = log_run(
                client, experiment, name, params, tags, {"train_cost": test / 2, "test_cost": test}
            )
            found["children"][(lr, l2, seed)] = run_id
    batched = client.create_experiment(BATCHED, artifact_location=f"{artifacts}/batched")
    metrics = {"train_cost_mean": 0.2, "train_cost_std": 0.01, "test_cost_mean": 0.3}
    metrics |= {"test_cost_std": 0.02, **{f"test_cost/seed_{s}": 0.28 + 0.02 * s for s in range(3)}}
    found["batched"] = log_run(
        client, batched, "batched", {"train.seeds": "3", "optim.lr": "1"}, {}, metrics
    )
    return found


def test_runs_list_filters_sorts_and_writes_csv(tiny):
    done = run_app(
        "nnexp",
        "runs",
        "list",
        EXPERIMENT,
        "--tracking-uri",
        tiny["uri"],
        "--filter",
        "regularization.l2=0",
        "--filter",
        "test_cost<0.25",
        "--sort=-test_cost",
        "--format",
        "csv",
        cwd=tiny["folder"],
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    # λ = 0 and test cost below 0.25: lr 0.5 (0.100–0.102) and lr 1 (0.200–0.202), 6 runs.
    expected = sorted(
        (final_cost(lr, "0", seed), tiny["children"][(lr, "0", seed)])
        for lr, seed in product(["0.5", "1"], range(3))
    )[::-1]
    assert [row["run_id"] for row in rows] == [run_id for _, run_id in expected]
    assert [float(row["test_cost"]) for row in rows] == [cost for cost, _ in expected]
    assert {row["regularization.l2"] for row in rows} == {"0"}
    assert "dataset.n_train" not in rows[0]  # derived sizes are not swept keys


def read(tiny, name: str = EXPERIMENT):
    from nnexp.report.listing import read_experiment

    return read_experiment(mlflow_client(tiny["uri"]), name)


def test_group_by_gives_the_t_interval_over_seeds_and_other_keys(tiny):
    from nnexp.report.listing import grouped

    found = grouped(read(tiny), ["optim.lr"])
    row = next(r for r in found.rows if r["optim.lr"] == "0.5")
    values = [final_cost("0.5", l2, seed) for l2 in ("0", "0.0001") for seed in range(3)]
    mean = sum(values) / 6
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / 5)
    assert row["runs"] == 6 and row["test_cost_n"] == 6
    assert row["test_cost_mean"] == pytest.approx(mean)
    assert row["test_cost_low"] == pytest.approx(mean - T5 * s / math.sqrt(6))
    assert row["test_cost_high"] == pytest.approx(mean + T5 * s / math.sqrt(6))
    assert [r["optim.lr"] for r in found.rows] == ["0.5", "1", "2"]


def test_a_batched_run_groups_over_its_own_seeds(tiny):
    from nnexp.report.listing import grouped

    (row,) = grouped(read(tiny, BATCHED), ["optim.lr"]).rows
    assert row["runs"] == 1 and row["test_cost_n"] == 3
    assert row["test_cost_mean"] == pytest.approx(0.30)  # 0.28, 0.30, 0.32
    assert row["test_cost_high"] - row["test_cost_mean"] == pytest.approx(
        4.302652729749464 * 0.02 / math.sqrt(3)
    )


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``nnexp args…`` in-process: (exit status, stdout, stderr)."""
    from nnexp.cli import main

    with pytest.raises(SystemExit) as ended:
        main(list(args))
    captured = capsys.readouterr()
    return ended.value.code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["runs", "list", "nope"],
            "no MLflow experiment named 'nope' (there are: Default, batched",
        ),
        (["runs", "list", EXPERIMENT, "--filter", "lr"], "is not KEY=VALUE"),
        (["runs", "list", EXPERIMENT, "--filter", "test_cost<low"], "needs a number"),
        (["runs", "list", EXPERIMENT, "--sort", "hidden"], "names no param, metric or field"),
        (["runs", "list", EXPERIMENT, "--group-by", "lr"], "optim.lr"),
        (["diff", "abc", "def"], "is not a run id"),
        (["diff", "0" * 32, "1" * 32], "no run with id 00000000"),
        (["diff", "a" * 32, "b" * 32, "--out", "x.svg"], "must name a .png file"),
    ],
)
def test_bad_input_is_one_line(tiny, capsys, args, fragment):
    code, out, err = cli(capsys, *args, "--tracking-uri", tiny["uri"])
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err


def test_a_run_and_a_sweep_are_not_compared(tiny, capsys):
    child = tiny["children"][("1", "0", 0)]
    code, _, err = cli(capsys, "diff", tiny["A"], child, "--tracking-uri", tiny["uri"])
    assert code == 2 and f"{tiny['A']} is a sweep and the other a single run" in err


def test_diff_of_two_runs_shows_only_what_differs(tiny, capsys):
    a, b = tiny["children"][("0.5", "0", 1)], tiny["children"][("1", "0.0001", 1)]
    code, out, _ = cli(capsys, "diff", a, b, "--tracking-uri", tiny["uri"], "--format", "json")
    found = json.loads(out)
    assert code == 0
    assert found["config"] == {
        "optim.lr": {"a": "0.5", "b": "1"},
        "regularization.l2": {"a": "0", "b": "0.0001"},
    }
    final = found["final"]["test_cost"]
    assert final["a"] == pytest.approx(0.101) and final["b"] == pytest.approx(0.211)
    assert final["b_minus_a"] == pytest.approx(0.11)
    # The curves fall to their last value: the best is the final, at the last epoch.
    assert found["best"]["test_cost"]["a"] == pytest.approx(0.101)


def test_diff_of_two_sweeps_with_a_figure(tiny, tmp_path):
    out = tmp_path / "diff.png"
    done = run_app(
        "nnexp",
        "diff",
        tiny["A"],
        tiny["B"],
        "--tracking-uri",
        tiny["uri"],
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert (
        f"A: sweep {tiny['A']} (A, 12 runs)" in text and f"B: sweep {tiny['B']} (B, 6 runs)" in text
    )
    assert "optim.lr" in text and "0.5, 1.0 → 2" not in text and "0.5, 1 → 2" in text
    assert "regularization.l2" not in text.split("final")[0]  # same values in both sweeps
    a_mean = (
        sum(
            final_cost(lr, l2, s) for lr in ("0.5", "1") for l2 in ("0", "0.0001") for s in range(3)
        )
        / 12
    )
    b_mean = sum(final_cost("2", l2, s) for l2 in ("0", "0.0001") for s in range(3)) / 6
    line = next(x for x in text.splitlines() if x.strip().startswith("test_cost"))
    assert [float(v) for v in line.split()[1:]] == pytest.approx(
        [a_mean, b_mean, b_mean - a_mean], rel=1e-4
    )
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and f"figure: {out}" in text
    notes = tmp_path / "notes.png"
    notes.write_text("mine")
    from nnexp.errors import UserError
    from nnexp.report.diff import check_figure_path

    with pytest.raises(UserError, match="is not a PNG figure"):
        check_figure_path(notes)


def test_report_states_importance_intervals_and_comparisons(tiny, tmp_path):
    from nnexp.report.make import make_report

    client = mlflow_client(tiny["uri"])
    first = make_report(client, tiny["A"], tmp_path / "no-experiments", tmp_path / "one")
    make_report(client, tiny["A"], tmp_path / "no-experiments", tmp_path / "two")
    files = sorted(p.relative_to(first.folder) for p in first.folder.rglob("*") if p.is_file())
    for name in files:
        assert (first.folder / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert first.logged_to == tiny["A"]
    stored = list((tiny["folder"] / "mlruns").rglob("report/report.md"))
    assert [p.read_bytes() for p in stored] == [(first.folder / "report.md").read_bytes()]
    markdown = (first.folder / "report.md").read_text()
    assert {"figures/parallel_coordinates.png", "figures/importance.png"} <= {str(p) for p in files}
    # lr moves the cost by 0.1, λ by 0.01, seeds by 0.001: lr's main effect dominates.
    importance = markdown.split("## What matters")[1].split("##")[0]
    rows = [line for line in importance.splitlines() if line.startswith("| `")]
    # var: lr ±0.05 → 0.0025, λ ±0.005 → 2.5e-5, seeds 0.001·(0, 1, 2) → 6.67e-7.
    total = 0.0025 + 2.5e-5 + 0.001**2 * 2 / 3
    assert rows[0] == f"| `optim.lr` | {0.0025 / total:.1%} |"
    assert rows[1] == f"| `regularization.l2` | {2.5e-5 / total:.1%} |"
    # Seed groups: lr 0.5, λ 0 over seeds 0–2 is 0.101 ± t_{.975,2}·0.001/√3.
    plain = markdown.replace("\\[", "[").replace("\\]", "]")
    half = 4.302652729749464 * 0.001 / math.sqrt(3)
    (row,) = [line for line in plain.splitlines() if line.startswith("| 0.5 | 0 | 3 |")]
    assert row.endswith(f"| 0.101 [{0.101 - half:.4g}, {0.101 + half:.4g}] |")
    # λ = 1e-4 against 0, paired by lr and seed: every difference is exactly 0.01.
    assert "| test_cost | `regularization.l2` | 0.0001 − 0 | 6 | 0.01 [0.01, 0.01] | worse |" in (
        plain
    )
    assert "best test_cost (epoch)" in markdown and "0.101 (20)" in markdown
