"""No file nnexp did not write is overwritten or deleted: a run or sweep folder over the user's
files is refused before anything is written, two runs or two sweeps never share a folder, and a
report's ``--out`` never removes what appeared there while it rendered."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from conftest import all_runs, assert_one_line_error, run_app, sweep_runs
from nnexp.errors import UserError
from nnexp.report.output import write_atomically
from nnexp.run.folders import MARK, take_run_dir, take_sweep_dir
from nnexp.tracking.sweep_file import SWEEP_FILE

#: What a user keeps in a project folder, under the names a run writes.
USER_FILES = {
    "config.yaml": "my own config\n",
    "weights.npz": "my weights",
    "costs.csv": "epoch,cost\n",
    "cost_curve.png": "my figure",
}
#: How a report refuses an --out that changed while it rendered.
REFUSED_OUT = r"did not write there|changed while the report rendered"


def user_folder(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in USER_FILES.items():
        (folder / name).write_text(text)
    return snapshot(folder)


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_new_or_empty_folder_is_taken_and_marked(tmp_path):
    assert take_run_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    (tmp_path / "empty").mkdir()
    assert take_run_dir(tmp_path / "empty") == tmp_path / "empty"
    assert (tmp_path / "a" / "b" / MARK).is_file() and (tmp_path / "empty" / MARK).is_file()


def test_a_run_folder_taken_by_another_run_gives_the_next_free_name(tmp_path):
    wanted = tmp_path / "outputs" / "2026-12-02" / "01-02-03"
    taken = [take_run_dir(wanted) for _ in range(3)]
    assert [p.name for p in taken] == ["01-02-03", "01-02-03_1", "01-02-03_2"]


#: Workers that take one folder at the same moment: each waits at this barrier first.
RACERS, ROUNDS = 4, 4
#: In each worker, the barrier it was given.
_WORKER: dict[str, threading.Barrier] = {}


def _join(barrier: threading.Barrier) -> None:
    _WORKER["start"] = barrier


def _take_at_once(wanted: Path) -> Path:
    _WORKER["start"].wait(timeout=60)
    return take_run_dir(wanted)


def test_runs_taking_one_folder_at_once_each_get_their_own(tmp_path):
    """Rounds of four processes each take the same folder at one moment (a barrier). They are
    spawned, not forked: a fork of this threaded test process can deadlock in the child."""
    wanted = tmp_path / "outputs" / "12-00-00"
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(RACERS)
    with ProcessPoolExecutor(
        RACERS, mp_context=spawn, initializer=_join, initargs=(barrier,)
    ) as pool:
        taken = list(pool.map(_take_at_once, [wanted] * ROUNDS * RACERS))
    assert len(set(taken)) == ROUNDS * RACERS


@pytest.mark.parametrize("take", [take_run_dir, take_sweep_dir])
def test_a_folder_holding_the_users_files_is_refused_and_left_as_it_was(tmp_path, take):
    before = user_folder(tmp_path / "project")
    with pytest.raises(UserError, match="holds files nnexp did not write"):
        take(tmp_path / "project")
    assert snapshot(tmp_path / "project") == before
    assert not (tmp_path / "project_1").exists()


def test_a_sweep_folder_taken_by_another_sweep_gives_the_next_free_name(tmp_path):
    wanted = tmp_path / "multirun" / "2026-12-02" / "01-02-03"
    taken = [take_sweep_dir(wanted) for _ in range(3)]
    assert [p.name for p in taken] == ["01-02-03", "01-02-03_1", "01-02-03_2"]
    (tmp_path / "older").mkdir()
    (tmp_path / "older" / SWEEP_FILE).write_text("{}")  # nnexp's, from before folders were marked
    assert take_sweep_dir(tmp_path / "older") == tmp_path / "older"


@pytest.mark.slow
@pytest.mark.parametrize("key", ["hydra.run.dir", "hydra.sweep.dir"])
def test_the_launch_folder_as_output_is_refused_before_anything_is_written(tmp_path, store, key):
    before = user_folder(tmp_path)
    before.pop("mlflow.db")
    sweep = ["-m", "model.hidden=3,4"] if key == "hydra.sweep.dir" else []
    done = run_app(
        "nnexp-train", *sweep, f"{key}=.", f"tracking.uri={store}", "optim.epochs=2",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(done, key, "holds files nnexp did not write", "new or empty folder")
    after = snapshot(tmp_path)
    after.pop("mlflow.db")
    assert after == before
    assert all_runs(store) == []


@pytest.mark.slow
def test_two_runs_into_one_folder_write_two_folders(tmp_path):
    args = ["hydra.run.dir=outputs/same", "tracking.enabled=false", "optim.epochs=2"]
    for _ in range(2):
        done = run_app("nnexp-train", *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    folders = sorted(p.name for p in (tmp_path / "outputs").iterdir())
    assert folders == ["same", "same_1"]
    for name in folders:
        assert (tmp_path / "outputs" / name / "weights.npz").is_file()
        assert (tmp_path / "outputs" / name / ".hydra" / "config.yaml").is_file()


#: A folder name Hydra's override grammar would read otherwise if it were not quoted.
ODD_NAME = "it's a {dir}, (x=1) ü"


@pytest.mark.parametrize(
    ("launcher", "tracked"),
    [
        ("nnexp", False),
        ("nnexp", True),
        pytest.param("joblib", True, marks=pytest.mark.slow),  # Hydra's, composing in workers
    ],
    ids=["untracked", "tracked", "joblib"],
)
def test_two_sweeps_into_one_folder_write_two_folders(tmp_path, store, launcher, tracked):
    """The second sweep (the same hydra.sweep.dir, or two started in the same second) writes
    every job into ``NAME_1``; the first sweep's files are left as they were."""
    wanted = tmp_path / ODD_NAME
    args = [
        "-m", "hydra.sweep.dir='" + str(tmp_path) + "/it\\'s a {dir}, (x=1) ü'",
        f"hydra/launcher={launcher}", f"tracking.uri={store}", f"tracking.enabled={tracked}",
        "tracking.log_model=false", "optim.epochs=2", "seed=0,1",
    ]  # fmt: skip
    first = run_app("nnexp-train", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = snapshot(wanted)
    second = run_app("nnexp-train", *args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert snapshot(wanted) == before
    moved = wanted.with_name(f"{ODD_NAME}_1")
    for folder in (wanted, moved):
        for job in ("0", "1"):
            assert (folder / job / "weights.npz").is_file()
            assert (folder / job / ".hydra" / "config.yaml").is_file()
    if tracked:
        parents, children = sweep_runs(store)
        assert sorted(p.data.tags["nnexp.sweep_dir"] for p in parents) == sorted(
            [str(wanted), str(moved)]
        )
        assert {str(Path(c.data.tags["nnexp.output_dir"]).parent) for c in children} == {
            str(wanted),
            str(moved),
        }


def test_a_folder_created_at_out_while_rendering_is_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report"

    def render(work: Path) -> None:
        (work / "report.md").write_text("# report\n")
        out.mkdir()
        (out / "notes.txt").write_text("mine")

    with pytest.raises(UserError, match=REFUSED_OUT):
        write_atomically(out, render, lambda work: None)
    assert snapshot(out) == {"notes.txt": hashlib.sha256(b"mine").hexdigest()}
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_a_file_added_to_a_previous_report_while_rendering_is_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report"
    write_atomically(out, lambda work: (work / "report.md").write_text("1"), lambda work: None)

    def render(work: Path) -> None:
        (work / "report.md").write_text("2")
        (out / "notes.txt").write_text("mine")

    with pytest.raises(UserError, match=REFUSED_OUT):
        write_atomically(out, render, lambda work: None)
    assert (out / "notes.txt").read_text() == "mine" and (out / "report.md").read_text() == "1"
