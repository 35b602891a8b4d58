"""Careless input, by class, is one line and leaves nothing: any path that is not a regular
readable file, any size that cannot fit in memory (refused from declared sizes or .npy headers
before allocation), any value non-finite before or after scaling, a CSV with a byte-order mark or
a huge header, values of the wrong kind, interpolation errors and path-like experiment names."""

from __future__ import annotations

import io
import os
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import all_runs, assert_one_line_error, run_app
from nnexp.data.csv_file import DataError, load_csv
from nnexp.errors import UserError
from nnexp.report.figures import heatmap
from nnexp.report.records import Curve, RunRecord
from nnexp.run.memory import training_bytes
from nnexp.run.weights import load_weights
from nnexp.safety.files import regular_file
from reliability.conftest import snapshot

RNG = np.random.default_rng(0)


def special(kind: str, folder: Path) -> Path:
    """A path that is not a regular file: ``kind`` says what it is."""
    path = folder / kind.replace(" ", "_")
    if kind == "folder":
        path.mkdir()
    elif kind == "FIFO":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif kind == "character device":
        path = Path("/dev/null")
    elif kind == "kernel file":
        path = Path("/proc/self/environ")
    return path


KINDS = {
    "folder": "a directory",
    "FIFO": "a FIFO",
    "socket": "a socket",
    "character device": "a character device",
    "kernel file": "a file of the kernel",
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_any_path_that_is_not_a_regular_file_says_what_it_is(tmp_path, kind):
    path = special(kind, tmp_path)
    with pytest.raises(DataError, match=KINDS[kind]):
        load_csv(path, "y", 0.25, RNG)
    with pytest.raises(UserError, match=KINDS[kind]):
        load_weights(path, 2, 3, 1)
    with pytest.raises(UserError, match=KINDS[kind]):
        regular_file(path, "the file")


def csv_text(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding=encoding)
    return path


def test_a_csv_with_a_byte_order_mark_reads_as_without(tmp_path):
    path = csv_text(tmp_path, "a,b,y\n1,2,3\n4,5,7\n6,1,2\n", encoding="utf-8-sig")
    data = load_csv(path, "y", 0.25, RNG)
    assert data.feature_names == ["a", "b"] and data.target_names == ["y"]


def test_a_huge_header_is_checked_in_linear_time(tmp_path):
    names = [f"c{i}" for i in range(300_000)] + ["c7"]
    path = csv_text(tmp_path, ",".join(names) + "\n")
    with pytest.raises(DataError, match="repeats c7"):
        load_csv(path, "c0", 0.25, RNG)


@pytest.mark.parametrize("target", [1, 2.5, True, False])
def test_a_target_that_is_not_a_name_is_refused(tmp_path, target):
    path = csv_text(tmp_path, "a,1,y\n1,2,3\n4,5,7\n6,1,2\n")
    with pytest.raises(DataError, match="not a column name"):
        load_csv(path, target, 0.25, RNG)


HUGE = st.floats(min_value=1e150, max_value=1.7e308) | st.floats(
    min_value=-1.7e308, max_value=-1e150
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(st.lists(HUGE, min_size=3, max_size=6, unique=True), st.booleans())
def test_any_column_that_overflows_scaling_is_refused(tmp_path, column, as_target):
    rows = [(value, i, i * i + 1) for i, value in enumerate(column)]
    path = csv_text(tmp_path, "a,b,y\n" + "".join(f"{a!r},{b},{y}\n" for a, b, y in rows))
    target = "a" if as_target else "y"
    try:
        data = load_csv(path, target, 0.25, RNG)
    except DataError as err:
        assert "too large to scale" in str(err) and "'a'" in str(err)
    else:
        for part in (data.X_train, data.X_test, data.y_train, data.y_test):
            assert np.isfinite(part).all()


def npz_claiming(path: Path, shape: tuple[int, ...]) -> Path:
    """An .npz whose W1 header claims ``shape`` but holds a few bytes (as a bomb would)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("W1.npy", header.getvalue() + b"\0" * 64)
        buffer = io.BytesIO()
        np.save(buffer, np.ones((3, 1)))
        archive.writestr("W2.npy", buffer.getvalue())
    return path


@pytest.mark.parametrize("shape", [(10**9, 10**9), (2**40,), (2, 3, 10**12)])
def test_npz_shapes_come_from_headers_before_any_data(tmp_path, shape):
    with pytest.raises(UserError, match=r"W1 has shape .* but this run needs \(2, 3\)"):
        load_weights(npz_claiming(tmp_path / "w.npz", shape), 2, 3, 1)


def test_declared_sizes_count_every_copy():
    assert training_bytes(100, 10, 10**9, 1, 1, None, 8) > 10 * 10**9 * 8
    assert training_bytes(100, 10, 4, 1, 1000, None, 8) >= 1000 * 100 * 5 * 8


def test_a_heatmap_whose_cells_all_hold_one_value(tmp_path):
    curve = Curve(np.array([0]), np.array([0.25]))
    records = [
        RunRecord(f"r{i}", f"r{i}", "finished", {"lr": lr, "bs": bs}, {}, "", {"test": curve})
        for i, (lr, bs) in enumerate([("0.5", "1"), ("0.5", "2"), ("1", "1"), ("1", "2")])
    ]
    assert heatmap(records, "lr", "bs", tmp_path / "h.png").stat().st_size > 0


CASES = {
    "csv target a number": (
        ["dataset=csv", "dataset.path=data.csv", "dataset.target=1"],
        ["dataset.target=1", "not a column name"],
    ),
    "noise nan": (["dataset=sine", "dataset.noise=nan"], ["dataset.noise=nan", "finite"]),
    "hidden beyond memory": (["model.hidden=1000000000000"], ["model.hidden=1000000000000", "TB"]),
    "rows beyond memory": (
        ["dataset=synthetic", "dataset.n=100000000000", "dataset.d=1000"],
        ["dataset=synthetic", "lower dataset.n"],
    ),
    "too many seeds": (["train.seeds=100000"], ["train.seeds=100000", "sweep over seed"]),
    "empty experiment": (["tracking.experiment="], ["tracking.experiment is empty"]),
    "interpolation to nowhere": (["tracking.experiment=${nope}"], ["nope"]),
    "data is a FIFO": (["dataset=csv", "dataset.path=fifo", "dataset.target=y"], ["FIFO"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_careless_values_are_one_line_and_leave_nothing(case, used_store, tmp_path):
    args, fragments = CASES[case]
    folder, uri = used_store
    csv_text(tmp_path, "a,1,y\n1,2,3\n4,5,7\n6,1,2\n")
    os.mkfifo(tmp_path / "fifo")
    before = snapshot(folder, uri)
    done = run_app("nnexp-train", f"tracking.uri={uri}", "optim.epochs=1", *args, cwd=tmp_path)
    assert_one_line_error(done, *fragments)
    assert snapshot(folder, uri) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "fifo"]


def test_a_path_like_experiment_name_keeps_artifacts_inside_mlruns(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    uri = f"sqlite:///{work}/mlflow.db"
    args = [f"tracking.uri={uri}", "optim.epochs=1", "tracking.log_model=false"]
    done = run_app("nnexp-train", *args, "tracking.experiment=..", cwd=work)
    assert done.returncode == 0, done.stderr
    (run,) = all_runs(uri, "..")
    assert run.info.artifact_uri.startswith((work / "mlruns").as_uri() + "/")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


@pytest.mark.slow
def test_a_failed_reproduction_leaves_no_folder(tmp_path, store):
    csv_text(tmp_path, "a,b,y\n1,2,3\n4,5,7\n6,1,2\n")
    args = ["dataset=csv", "dataset.path=data.csv", "dataset.target=y", "optim.epochs=2"]
    args += ["tracking.log_model=false"]  # reproduce reads weights.npz, never the model
    done = run_app("nnexp-train", f"tracking.uri={store}", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = all_runs(store)
    (tmp_path / "data.csv").unlink()
    before = sorted(p.name for p in tmp_path.iterdir())
    done = run_app("nnexp", "reproduce", run.info.run_id, "--tracking-uri", store, cwd=tmp_path)
    assert_one_line_error(done, "data.csv does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "outputs" / "reproduce").exists()
