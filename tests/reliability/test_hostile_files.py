"""Files nnexp did not write itself, or wrote and reads back: initial weights whatever their
member names, and a run's stored weights.npz that is garbage, forged or gone. Every size is
checked before any data is inflated; a failed `nnexp reproduce` adds no run."""

from __future__ import annotations

import io
import shutil
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import all_runs, assert_one_line_error, run_app
from nnexp.errors import UserError
from nnexp.run.weights import load_weights

#: A header and ``rows`` × 16000 float64 zeros: 128 MB for 1000 rows, ~0.13 MB deflated.
COLUMNS = 16_000


def npy_header(shape: tuple[int, ...]) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    return header.getvalue()


def bomb(path: Path, name: str, shape: tuple[int, int]) -> Path:
    """An .npz whose member ``name`` is a true, consistent array of zeros of ``shape`` (its zip
    entry declares exactly what its header says), deflated to a fraction of its size."""
    zeros = b"\0" * (8 * shape[1])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(name, "w", force_zip64=True) as member:
            member.write(npy_header(shape))
            for _ in range(shape[0]):
                member.write(zeros)
        buffer = io.BytesIO()
        np.save(buffer, np.ones((3, 1)))
        archive.writestr("W2", buffer.getvalue())
    return path


@pytest.mark.parametrize("name", ["W1", "W1.npy"])
def test_a_bomb_is_refused_from_its_header_whatever_the_member_name(tmp_path, name):
    path = bomb(tmp_path / "w.npz", name, (1000, COLUMNS))
    assert path.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match=r"W1 has shape \(1000, 16000\) but this run needs"):
            load_weights(path, 2, 3, 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, peak


def test_members_without_the_npy_suffix_load_as_with_it(tmp_path):
    W1, W2 = np.arange(6.0).reshape(2, 3), np.ones((3, 1))
    with zipfile.ZipFile(tmp_path / "w.npz", "w") as archive:
        for name, array in (("W1", W1), ("W2", W2)):
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(name, buffer.getvalue())
    loaded = load_weights(tmp_path / "w.npz", 2, 3, 1)
    assert np.array_equal(loaded[0], W1) and np.array_equal(loaded[1], W2)


def test_a_member_that_declares_more_than_its_header_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "w.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("W1.npy", npy_header((2, 3)) + b"\0" * (48 + 10_000_000))
        archive.writestr("W2.npy", npy_header((3, 1)) + b"\0" * 24)
    with pytest.raises(UserError, match=r"member 'W1.npy' declares 10000176 bytes"):
        load_weights(tmp_path / "w.npz", 2, 3, 1)


def test_two_members_of_one_name_are_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "w.npz", "w") as archive:
        for name in ("W1", "W1.npy", "W2"):
            buffer = io.BytesIO()
            np.save(buffer, np.ones((2, 3)))
            archive.writestr(name, buffer.getvalue())
    with pytest.raises(UserError, match="holds W1 twice"):
        load_weights(tmp_path / "w.npz", 2, 3, 1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, empty_store_file) -> tuple[str, str, Path]:
    """(uri, run id, its stored weights.npz) of one FINISHED run with model.hidden=4."""
    folder = tmp_path_factory.mktemp("reproduce-store")
    shutil.copyfile(empty_store_file, folder / "mlflow.db")
    uri = f"sqlite:///{folder}/mlflow.db"
    done = run_app(
        "nnexp-train",
        f"tracking.uri={uri}",
        "optim.epochs=3",
        "model.hidden=4",
        "tracking.log_model=false",
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    (run,) = all_runs(uri)
    (weights,) = (folder / "mlruns").rglob(f"{run.info.run_id}/artifacts/weights.npz")
    return uri, run.info.run_id, weights


def garbage(path: Path) -> None:
    path.write_bytes(b"not an archive at all\n")


def huge_header(path: Path) -> None:
    """W1 claims 10**6 inputs for the run's 4 hidden units: 32 MB declared in a small file."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("W1.npy", npy_header((10**6, 4)) + b"\0" * 64)
        archive.writestr("W2.npy", npy_header((4, 1)) + b"\0" * 32)


def wrong_hidden(path: Path) -> None:
    np.savez(path, W1=np.ones((1, 7)), W2=np.ones((7, 1)))


def deleted(path: Path) -> None:
    path.unlink()


STORED = {
    garbage: "is not an .npz archive",
    huge_header: "declares",
    wrong_hidden: "do not fit a network of model.hidden=4",
    deleted: "is missing from its artifacts",
}


@pytest.mark.parametrize("damage", list(STORED), ids=lambda f: f.__name__)
def test_reproduce_of_damaged_stored_weights_is_one_line_and_adds_no_run(trained, tmp_path, damage):
    uri, run_id, weights = trained
    kept = tmp_path / "kept.npz"
    shutil.copyfile(weights, kept)
    before = sorted((r.info.run_id, r.info.status) for r in all_runs(uri))
    damage(weights)
    try:
        done = run_app("nnexp", "reproduce", run_id, "--tracking-uri", uri, cwd=tmp_path)
    finally:
        shutil.copyfile(kept, weights)
    line = assert_one_line_error(done, f"run {run_id}'s weights.npz", STORED[damage])
    assert "numpy.savez" not in line
    assert sorted((r.info.run_id, r.info.status) for r in all_runs(uri)) == before
