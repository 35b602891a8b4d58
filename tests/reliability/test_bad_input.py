"""Bad input to `nnexp-train`: one line naming the problem and the fix, exit 2, no traceback, and
the store exactly as it was (same bytes: no run opened, nothing RUNNING, no partial artifact), and
no run folder left behind."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, run_app
from reliability.conftest import snapshot


def csv_file(text: str):
    def make(folder: Path) -> None:
        (folder / "data.csv").write_text(text)

    return make


def npz(**arrays):
    def make(folder: Path) -> None:
        np.savez(folder / "w.npz", **arrays)

    return make


def raw(name: str, payload: bytes):
    def make(folder: Path) -> None:
        (folder / name).write_bytes(payload)

    return make


def truncated_npz(folder: Path) -> None:
    np.savez(folder / "full.npz", W1=np.ones((2, 3)), W2=np.ones((3, 1)))
    data = (folder / "full.npz").read_bytes()
    (folder / "w.npz").write_bytes(data[: len(data) // 2])


GOOD_ROWS = "a,b,y\n1,2,3\n4,5,7\n6,1,2\n"
CSV = ["dataset=csv", "dataset.path=data.csv", "dataset.target=y"]
INIT = ["model.init_weights=w.npz"]

CASES = {
    # config values out of range
    "lr zero": (["optim.lr=0"], None, ["optim.lr", "positive"]),
    "lr negative": (["optim.lr=-1"], None, ["optim.lr", "positive"]),
    "lr infinite": (["optim.lr=inf"], None, ["optim.lr", "finite"]),
    "hidden zero": (["model.hidden=0"], None, ["model.hidden=0", "≥ 1"]),
    "epochs negative": (["optim.epochs=-1"], None, ["optim.epochs=-1", "≥ 0"]),
    "batch size zero": (["optim.batch_size=0"], None, ["optim.batch_size", "null for full batch"]),
    "l2 negative": (["regularization.l2=-0.1"], None, ["regularization.l2", "≥ 0"]),
    "seed negative": (["seed=-3"], None, ["seed=-3"]),
    "log_every zero": (["tracking.log_every=0"], None, ["tracking.log_every"]),
    "seeds zero": (["train.seeds=0"], None, ["train.seeds"]),
    "test fraction one": (
        ["dataset=sine", "dataset.test_fraction=1"],
        None,
        ["test_fraction", "between 0 and 1"],
    ),
    "noise negative": (["dataset=sine", "dataset.noise=-1"], None, ["dataset.noise"]),
    # config values of the wrong type, unknown keys and options
    "hidden not an int": (["model.hidden=abc"], None, ["model.hidden=abc", "whole number"]),
    "lr not a number": (["optim.lr=fast"], None, ["optim.lr=fast", "pass a number"]),
    "lr empty": (["optim.lr="], None, ["optim.lr=", "pass a number"]),
    "enabled not a bool": (
        ["tracking.enabled=maybe"],
        None,
        ["tracking.enabled=maybe", "pass true or false"],
    ),
    "unknown init": (["model.init=he"], None, ["model.init=he", "normal, xavier"]),
    "unknown reduction": (["cost.reduction=avg"], None, ["cost.reduction=avg", "mean, sum"]),
    "unknown dataset": (
        ["dataset=imagenet"],
        None,
        ["unknown dataset option 'imagenet'", "sleep_study"],
    ),
    "unknown optim option": (
        ["optim=adam"],
        None,
        ["unknown optim option 'adam'", "gd, momentum, nesterov, sgd"],
    ),
    "unknown key": (["model.depth=2"], None, ["model.depth is not a config key", "--cfg job"]),
    "key of another dataset": (["dataset.n=5"], None, ["dataset.n is not a config key"]),
    "added unknown key": (
        ["+model.depth=2"],
        None,
        ["model.depth is not a key nnexp knows", "remove +model.depth"],
    ),
    "deleted key": (["~model.hidden"], None, ["~model.hidden", "set it instead of deleting it"]),
    "unparsable override": (["optim.lr=[1,2"], None, ["optim.lr=[1,2"]),
    # csv problems
    "csv path unset": (["dataset=csv", "dataset.target=y"], None, ["needs dataset.path"]),
    "csv missing": (CSV, None, ["data.csv does not exist"]),
    "csv empty": (CSV, csv_file(""), ["data.csv is empty"]),
    "csv header only": (CSV, csv_file("a,b,y\n"), ["0 data row"]),
    "csv one row": (CSV, csv_file("a,b,y\n1,2,3\n"), ["1 data row", "at least 2"]),
    "csv ragged": (CSV, csv_file("a,b,y\n1,2,3\n4,5\n"), ["line 3: 2 fields but the header has 3"]),
    "csv non-numeric": (
        CSV,
        csv_file(GOOD_ROWS + "x,2,3\n"),
        ["line 5, column 'a': 'x' is not a number"],
    ),
    "csv nan": (CSV, csv_file(GOOD_ROWS + "nan,2,3\n"), ["'nan' is not a finite number"]),
    "csv inf": (CSV, csv_file(GOOD_ROWS + "1,-inf,3\n"), ["'-inf' is not a finite number"]),
    "csv constant column": (
        CSV,
        csv_file("a,b,y\n1,5,3\n4,5,7\n6,5,2\n"),
        ["column 'b' has the same value"],
    ),
    "csv target missing": (
        ["dataset=csv", "dataset.path=data.csv", "dataset.target=score"],
        csv_file(GOOD_ROWS),
        ["target column 'score'", "columns: a, b, y"],
    ),
    "csv target unset": (
        ["dataset=csv", "dataset.path=data.csv"],
        csv_file(GOOD_ROWS),
        ["dataset.target is not set"],
    ),
    "csv not utf-8": (CSV, raw("data.csv", b"\xff\xfe\x00bin"), ["not UTF-8"]),
    # init_weights problems
    "weights missing": (INIT, None, ["w.npz does not exist"]),
    "weights wrong names": (INIT, npz(A=np.ones((2, 3)), B=np.ones((3, 1))), ["lacks W1, W2"]),
    "weights wrong shape": (
        INIT,
        npz(W1=np.ones((2, 4)), W2=np.ones((4, 1))),
        ["W1 has shape (2, 4)", "needs (2, 3)"],
    ),
    "weights integers": (
        INIT,
        npz(W1=np.ones((2, 3), int), W2=np.ones((3, 1))),
        ["W1 has dtype int64"],
    ),
    "weights object array": (
        INIT,
        npz(W1=np.array([None] * 6, object).reshape(2, 3), W2=np.ones((3, 1))),
        ["pickled objects"],
    ),
    "weights pickled file": (
        INIT,
        raw("w.npz", pickle.dumps({"W1": [[1.0]]})),
        ["is not an .npz archive"],
    ),
    "weights truncated": (INIT, truncated_npz, ["truncated or corrupt"]),
    "weights nan": (INIT, npz(W1=np.full((2, 3), np.nan), W2=np.ones((3, 1))), ["NaN or inf"]),
    # tracking URIs
    "uri unknown scheme": (
        ["tracking.uri=ftp://host/store"],
        None,
        ["unknown scheme 'ftp'", "sqlite"],
    ),
    "uri file store": (
        ["tracking.uri=file:///tmp/mlruns"],
        None,
        ["MLflow 3 keeps runs in a database"],
    ),
    "uri plain folder": (["tracking.uri=./mlruns"], None, ["names a folder"]),
    "uri in-memory": (["tracking.uri=sqlite://"], None, ["in-memory store"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_changes_nothing(case, used_store, tmp_path):
    args, setup, fragments = CASES[case]
    folder, uri = used_store
    if setup is not None:
        setup(tmp_path)
    before = snapshot(folder, uri)
    uri_given = any(a.startswith("tracking.uri=") for a in args)
    store_arg = [] if uri_given else [f"tracking.uri={uri}"]
    done = run_app("nnexp-train", *store_arg, "optim.epochs=2", *args, cwd=tmp_path)
    assert_one_line_error(done, *fragments)
    assert snapshot(folder, uri) == before
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "outputs").exists()
