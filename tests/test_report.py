"""`nnexp report` end to end: real sweeps into real SQLite stores, the real command line, the
report's files read back; every experiment of experiments/ runs (shortened) and reports; reports
are byte-identical on rerun; bad input gives one line and writes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO, assert_one_line_error, mlflow_client, run_app, sweep_runs

pytestmark = pytest.mark.slow

EXPERIMENTS = sorted(p.stem for p in (REPO / "experiments").glob("*.yaml"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GRID = "grid"
#: The tests of grid_store on one pytest-xdist worker, so its sweep runs once.
ON_GRID_WORKER = pytest.mark.xdist_group("grid_store")


def report(tmp_path: Path, store: str, *args: str):
    return run_app("nnexp", "report", *args, "--tracking-uri", store, cwd=tmp_path)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs_shortened_and_reports(name, tmp_path, store):
    done = run_app(
        "nnexp-train",
        "-m",
        f"+experiment={name}",
        f"tracking.uri={store}",
        "optim.epochs=5",
        "tracking.log_model=false",
        cwd=tmp_path,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (parent,), children = sweep_runs(store, name)
    assert parent.data.params and all(c.info.status == "FINISHED" for c in children)

    done = report(tmp_path, store, name, "--out", "out")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    markdown = (out / "report.md").read_text()
    assert f"Report: {name}" in markdown and f"experiments/{name}.yaml" in markdown
    for child in children:
        assert child.info.run_id in markdown
    for key in parent.data.params:
        assert f"`{key}`" in markdown
    assert f"runs by status: finished {len(children)}" in markdown
    figures = re.findall(r"\]\((figures/[a-z_]+\.png)\)", markdown)
    assert "figures/cost_curves.png" in figures and "figures/final_cost_by_key.png" in figures
    assert sorted(figures) == sorted(f"figures/{p.name}" for p in (out / "figures").iterdir())
    for figure in figures:
        assert (out / figure).read_bytes().startswith(PNG_MAGIC)
    html = (out / "report.html").read_text()
    assert html.count("src='data:image/png;base64,") == len(figures)
    assert "http://" not in html and "https://" not in html and "<script" not in html
    logged = {a.path for a in mlflow_client(store).list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.md", "report/report.html", "report/figures"} <= logged


@pytest.fixture(scope="module")
def grid_store(tmp_path_factory) -> tuple[str, Path]:
    """One sweep of 12 jobs: hidden 0 (rejected: 4 FAILED runs), 2 and 4, two learning rates,
    two seeds; the launch folder and its store."""
    folder = tmp_path_factory.mktemp("grid")
    store = f"sqlite:///{folder}/mlflow.db"
    done = run_app(
        "nnexp-train",
        "-m",
        f"tracking.uri={store}",
        f"tracking.experiment={GRID}",
        "tracking.log_model=false",
        "optim.epochs=20",
        "model.hidden=0,2,4",
        "optim.lr=0.5,1",
        "seed=0,1",
        cwd=folder,
    )
    assert done.returncode == 1, done.stderr  # the rejected jobs fail, the others finish
    return store, folder


@ON_GRID_WORKER
def test_sweep_report_is_complete_and_byte_identical_on_rerun(grid_store, tmp_path):
    """The first report goes to its default folder, reports/<run id> of the working folder."""
    store, folder = grid_store
    (parent,), children = sweep_runs(store, GRID)
    first = run_app("nnexp", "report", parent.info.run_id, cwd=folder)
    second = report(tmp_path, store, parent.info.run_id, "--out", "second")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    default = folder / "reports" / parent.info.run_id
    assert files_of(default) == files_of(tmp_path / "second")
    figures = sorted(p.name for p in (default / "figures").iterdir())
    assert figures == [
        "cost_curves.png",
        "final_cost_by_key.png",
        "importance.png",
        "parallel_coordinates.png",
        "seed_bands.png",
        "test_cost_heatmap.png",
    ]
    for section in ("What matters: importance", "Seed groups", "Paired comparisons"):
        assert f"## {section}" in (default / "report.md").read_text()
    markdown = (default / "report.md").read_text()
    assert "runs by status: finished 8, failed 4" in markdown
    assert markdown.count("model.hidden=0 must be ≥ 1") == 4  # the failed runs and why
    ranked = re.findall(r"^\| (\d+) \| .*\| `([0-9a-f]{32})` \|$", markdown, re.M)
    by_id = {c.info.run_id: c for c in children}
    costs = [by_id[run_id].data.metrics.get("test_cost") for _, run_id in ranked]
    finished = [c for c in costs if c is not None]
    assert len(ranked) == 12 and finished == sorted(finished) and costs[8:] == [None] * 4
    body = re.sub(r"[0-9a-f]{32}", "", markdown.replace(parent.info.run_name, ""))  # ids are hex
    assert "2026" not in body  # no clock time in the body


@ON_GRID_WORKER
def test_an_experiment_name_reports_all_its_runs_and_replaces_an_old_report(grid_store, tmp_path):
    store, _ = grid_store
    out = tmp_path / "by-name"
    for _ in range(2):
        done = report(tmp_path, store, GRID, "--out", str(out))
        assert done.returncode == 0, done.stderr
    markdown = (out / "report.md").read_text()
    assert "All 12 runs of MLflow experiment `grid`" in markdown
    assert [p.name for p in tmp_path.iterdir()] == ["by-name"]  # no temporary folder left


@ON_GRID_WORKER
@pytest.mark.parametrize(
    ("target", "fragments"),
    [
        ("no_such_thing", ["no experiment file, sweep run id or MLflow experiment", "grid"]),
        ("0123456789abcdef0123456789abcdef", ["no run with id 0123456789abcdef"]),
    ],
)
def test_unknown_target_is_one_line(grid_store, tmp_path, target, fragments):
    store, _ = grid_store
    assert_one_line_error(report(tmp_path, store, target), *fragments)
    assert not list(tmp_path.iterdir())


@ON_GRID_WORKER
def test_a_child_run_id_names_its_sweep(grid_store, tmp_path):
    store, _ = grid_store
    (parent,), children = sweep_runs(store, GRID)
    done = report(tmp_path, store, children[0].info.run_id)
    assert_one_line_error(done, "not a sweep's parent run", parent.info.run_id)


def test_runs_without_metrics_are_refused(tmp_path, store):
    done = run_app("nnexp-train", "-m", f"tracking.uri={store}", "model.hidden=0,-1", cwd=tmp_path)
    assert done.returncode == 1
    assert_one_line_error(report(tmp_path, store, "nnexp"), "recorded a cost metric")
    assert not (tmp_path / "reports").exists()


def test_a_store_that_cannot_be_opened(tmp_path):
    missing = f"sqlite:///{tmp_path}/nowhere/mlflow.db"
    assert_one_line_error(report(tmp_path, missing, "grid"), "no MLflow store")
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    assert_one_line_error(report(tmp_path, f"sqlite:///{junk}", "grid"), "not an SQLite")


@ON_GRID_WORKER
def test_an_unusable_output_folder_is_refused_and_left_alone(grid_store, tmp_path):
    store, _ = grid_store
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    done = report(tmp_path, store, GRID, "--out", str(blocker / "report"))
    assert_one_line_error(done, "is a file, not a folder")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert_one_line_error(report(tmp_path, store, GRID, "--out", str(busy)), "notes.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "busy"]
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]


def test_a_failure_while_writing_leaves_nothing(tmp_path):
    from nnexp.errors import UserError
    from nnexp.report.output import write_atomically

    out = tmp_path / "report"

    def render(folder: Path) -> None:
        (folder / "report.md").write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(UserError, match="No space left on device"):
        write_atomically(out, render, publish=lambda folder: None)
    assert not list(tmp_path.iterdir())
