"""Datasets: the lecture's numbers exactly, every built-in loads, CSV files checked."""

import re

import numpy as np
import pytest

from nnexp.data import DATASETS, DataError, load_dataset

SPECS = {
    "sleep_study": {},
    "xor": {},
    "sine": {"n": 50, "noise": 0.1, "test_fraction": 0.2},
    "synthetic": {"n": 60, "d": 4, "k": 3, "noise": 0.05, "test_fraction": 0.25},
    "diabetes": {"test_fraction": 0.2},
    "breast_cancer": {"test_fraction": 0.2},
    "digits": {"test_fraction": 0.2},
}


def load(name, seed=0, **spec):
    return load_dataset({"name": name, **SPECS.get(name, {}), **spec}, np.random.default_rng(seed))


def test_sleep_study_is_the_lecture_data_scaled_by_training_maxima():
    data = load("sleep_study")
    assert np.allclose(data.X_train, [[0.3, 1.0], [0.5, 0.2], [1.0, 0.4], [0.6, 0.3]])
    assert np.allclose(data.y_train.ravel(), [0.75, 0.82, 0.93, 0.70])
    assert np.allclose(data.X_test, [[0.4, 1.1], [0.45, 0.2], [0.9, 0.5], [0.6, 0.4]])
    assert np.allclose(data.y_test.ravel(), [0.70, 0.89, 0.85, 0.75])
    assert np.allclose(data.y_scaler.inverse(data.y_test).ravel(), [70, 89, 85, 75])


@pytest.mark.parametrize("name", [n for n in DATASETS if n != "csv"])
def test_every_builtin_dataset_loads_scaled(name):
    data = load(name)
    assert data.X_train.shape[1] == data.X_test.shape[1] == data.d
    assert data.y_train.shape[1] == data.k and len(data.X_train) > 0 and len(data.X_test) > 0
    assert np.isfinite(data.X_train).all() and np.isfinite(data.y_train).all()
    assert data.y_train.min() >= 0 and data.y_train.max() <= 1
    assert np.allclose(data.x_scaler.inverse(data.x_scaler.transform(data.X_test)), data.X_test)


def test_digits_targets_are_one_hot():
    data = load("digits")
    assert data.k == 10 and np.array_equal(data.y_train.sum(axis=1), np.ones(len(data.y_train)))
    assert len(data.X_train) + len(data.X_test) == 1797


def test_a_job_that_scales_its_data_in_place_leaves_the_next_jobs_alone():
    """scikit-learn's files are read once per process; each job's arrays are its own."""
    first = load("digits", seed=1)
    first.X_train[:] = 0
    first.y_train[:] = 0
    again = load("digits", seed=1)
    assert again.X_train.any() and again.y_train.any()
    assert again.digest() != first.digest()


def test_random_splits_follow_the_seed():
    assert load("diabetes", seed=1).digest() == load("diabetes", seed=1).digest()
    assert load("diabetes", seed=1).digest() != load("diabetes", seed=2).digest()
    assert load("sine", seed=3).digest() != load("sine", seed=4).digest()


def test_inputs_are_standardised_on_the_training_split():
    data = load("diabetes")
    assert np.allclose(data.X_train.mean(axis=0), 0, atol=1e-12)
    assert np.allclose(data.X_train.std(axis=0), 1)


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def load_csv(path, target="y", test_fraction=0.25):
    return load(
        "csv",
        path=str(path) if path is not None else None,
        target=target,
        test_fraction=test_fraction,
    )


def test_csv_loads_named_targets(tmp_path):
    path = write(
        tmp_path, "a,b,y,z\n" + "".join(f"{i},{i * i % 7},{i % 3},{i % 5}\n" for i in range(20))
    )
    data = load_csv(path, target=["y", "z"])
    assert data.d == 2 and data.k == 2 and data.feature_names == ["a", "b"]
    assert len(data.X_train) == 15 and len(data.X_test) == 5


@pytest.mark.parametrize(
    ("text", "target", "message"),
    [
        ("", "y", "is empty"),
        ("a,y\n", "y", "0 data row"),
        ("a,y\n1,2\n", "y", "1 data row"),
        ("a,y\n1,2\n3\n4,5\n", "y", "line 3: 1 fields but the header has 2"),
        ("a,y\n1,2\nx,5\n4,6\n", "y", "line 3, column 'a': 'x' is not a number"),
        ("a,y\n1,2\n,5\n4,6\n", "y", "an empty cell is not a number"),
        ("a,y\n1,2\nnan,5\n4,6\n", "y", "'nan' is not a finite number"),
        ("a,y\n1,2\ninf,5\n4,6\n", "y", "'inf' is not a finite number"),
        ("a,b,y\n1,7,2\n3,7,5\n4,7,6\n", "y", "column 'b' has the same value in every row"),
        ("a,y\n1,2\n3,5\n", "score", "target column 'score' is not in data.csv (columns: a, y)"),
        ("a,y\n1,2\n3,5\n", None, "dataset.target is not set"),
        ("a,a,y\n1,2,3\n4,5,6\n", "y", "the header repeats a"),
        ("y\n1\n2\n", "y", "every column is a target"),
    ],
)
def test_csv_problems_are_named(tmp_path, text, target, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=re.escape(message)):
        load_csv(path, target=target)


def test_csv_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        load_csv(tmp_path)
    with pytest.raises(DataError, match=r"needs dataset\.path"):
        load_csv(None)


def test_csv_binary_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xff\xfe\x00\x01binary")
    with pytest.raises(DataError, match="not UTF-8"):
        load_csv(path)


def assert_group_is_the_registry(group: str, names, schemas) -> None:
    """Every name has its conf/GROUP/NAME.yaml built on its own schema (``schemas[name]``), and
    back; each composes with exactly its schema's keys and passes the checks with its defaults."""
    from dataclasses import fields

    from hydra import compose, initialize_config_dir

    from nnexp.config import schema as config

    files = {path.stem: path.read_text() for path in (config.CONF_DIR / group).glob("*.yaml")}
    assert sorted(files) == sorted(names) == sorted(schemas)
    config.register_schemas()
    with initialize_config_dir(str(config.CONF_DIR), version_base="1.3"):
        for name, text in files.items():
            assert f"/schema/{group}/{name}@_here_" in text
            cfg = compose("config", overrides=[f"{group}={name}"])
            assert list(cfg[group]) == [f.name for f in fields(schemas[name])]
            assert cfg[group].name == name
            config.check(cfg)


def test_the_registry_and_the_dataset_group_name_the_same_datasets_and_schemas():
    from nnexp.config import schema as config
    from nnexp.data import REGISTRY

    assert sorted(REGISTRY) == sorted(DATASETS)
    assert_group_is_the_registry("dataset", REGISTRY, config.DATASET_SCHEMAS)


def test_an_unknown_dataset_names_the_known_ones():
    with pytest.raises(
        DataError, match="unknown dataset 'imagenet'; choose one of sleep_study, xor"
    ):
        load_dataset({"name": "imagenet"}, np.random.default_rng(0))
