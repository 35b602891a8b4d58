"""Fast unit tests of the pure helpers: names of runs and metrics, flattening, reading a run's
final cost and latest attempts, Hydra's errors as one line, a report's folder name."""

from types import SimpleNamespace

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from nnexp.config import schema as config
from nnexp.config.hydra_errors import HYDRA_ERRORS, hydra_error_line
from nnexp.report.make import folder_name
from nnexp.run.job import flatten, run_name
from nnexp.tracking.vocabulary import (
    CONFIG_HASH_TAG,
    cost_key,
    final_cost,
    latest_attempts,
    metric_values,
)


def test_flatten_gives_dotted_keys_at_every_depth():
    tree = {"seed": 0, "model": {"hidden": 3, "init": {"scheme": "normal"}}, "empty": {}}
    assert flatten(tree) == {"seed": 0, "model.hidden": 3, "model.init.scheme": "normal"}


CFG = OmegaConf.create(
    {
        "dataset": {"name": "xor"},
        "model": {"hidden": 4},
        "optim": {"lr": 0.5},
        "regularization": {"l2": 0.0},
    }
)


def test_run_name_of_a_single_run_names_the_data_and_main_hyperparameters():
    assert run_name(CFG, [], []) == "xor hidden=4 lr=0.5 l2=0.0"
    assert run_name(CFG, ["model.hidden=4"], []) == "xor hidden=4 lr=0.5 l2=0.0"


def test_run_name_of_a_sweep_job_is_its_swept_values_as_given():
    axes = ["model.hidden", "optim.lr"]
    name = run_name(CFG, ["model.hidden=4", "optim.lr=5e-1"], axes)
    assert name == "hidden=4 lr=5e-1"


def test_run_name_keeps_the_full_key_where_two_swept_keys_end_alike():
    cfg = OmegaConf.merge(CFG, {"dataset": {"seed": 3}, "seed": 1})
    axes = ["seed", "dataset.seed", "+model.hidden"]
    name = run_name(cfg, ["seed=1", "model.hidden=4"], axes)
    assert name == "seed=1 dataset.seed=3 hidden=4"


def test_metric_values_of_one_seed_and_of_several():
    one = metric_values({"train_cost": np.array([0.5]), "test_cost": np.array([0.25])}, [7])
    assert one == {"train_cost": 0.5, "test_cost": 0.25}
    with np.errstate(invalid="ignore"):  # as in training, where a seed diverged
        values = {"train_cost": np.array([1.0, 3.0]), "test_cost": np.array([2.0, np.inf])}
        several = metric_values(values, [4, 5])
    assert several == {
        "train_cost_mean": 2.0,
        "train_cost_std": 1.0,
        "train_cost/seed_4": 1.0,
        "train_cost/seed_5": 3.0,
        "test_cost/seed_4": 2.0,
    }  # non-finite values (a diverged seed, and the test mean and std over it) are left out


def test_cost_key_and_final_cost_read_single_and_batched_runs():
    assert cost_key("test") == "test_cost" and cost_key("train", "std") == "train_cost_std"
    assert final_cost({"test_cost": 0.1, "train_cost": 0.2}, "test") == 0.1
    assert final_cost({"test_cost_mean": 0.3, "test_cost_std": 0.01}, "test") == 0.3
    assert np.isnan(final_cost({"train_cost": 0.2}, "test"))


def run(run_id, start, config_hash=None):
    tags = {CONFIG_HASH_TAG: config_hash} if config_hash else {}
    return SimpleNamespace(
        info=SimpleNamespace(run_id=run_id, start_time=start), data=SimpleNamespace(tags=tags)
    )


def test_latest_attempts_keeps_the_last_run_of_each_config():
    first, retry, other, untagged = (
        run("a", 10, "h1"),
        run("b", 30, "h1"),
        run("c", 20, "h2"),
        run("d", 5),
    )
    latest = latest_attempts([retry, other, first, untagged])
    assert latest == {"d": untagged, "h1": retry, "h2": other}
    same_start = latest_attempts([run("f", 10, "h"), run("e", 10, "h")])
    assert same_start["h"].info.run_id == "f"  # ties go to the larger run id, whatever the order


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["model.hiden=3"],
            "model.hiden is not a config key here (Key 'hiden' not in 'ModelSchema'); "
            "check the spelling: `nnexp-train --cfg job` prints every key",
        ),
        (
            ["dataset=nope"],
            "unknown dataset option 'nope'; choose one of: breast_cancer, csv, diabetes, digits, "
            "sine, sleep_study, synthetic, xor",
        ),
        (
            ["model.hidden=abc"],
            "model.hidden=abc: Value 'abc' of type 'str' could not be converted to Integer; "
            "pass a whole number",
        ),
        (
            ["tracking.enabled=maybe"],
            "tracking.enabled=maybe: Value 'maybe' is not a valid bool (type str); "
            "pass true or false",
        ),
    ],
)
def test_hydra_error_line_names_the_problem_and_the_fix(overrides, line):
    config.register_schemas()
    with (
        initialize_config_dir(str(config.CONF_DIR), version_base="1.3"),
        pytest.raises(HYDRA_ERRORS) as raised,
    ):
        compose("config", overrides=overrides)
    assert hydra_error_line(raised.value) == line


def test_hydra_error_line_of_an_unreadable_override_is_one_line():
    config.register_schemas()
    with (
        initialize_config_dir(str(config.CONF_DIR), version_base="1.3"),
        pytest.raises(HYDRA_ERRORS) as raised,
    ):
        compose("config", overrides=["optim.lr=[1"])
    line = hydra_error_line(raised.value)
    assert line.startswith("cannot read the override optim.lr=[1: ") and "\n" not in line


@pytest.mark.parametrize(
    ("target", "folder"),
    [
        ("lr_width_grid", "lr_width_grid"),
        ("../x", "x"),
        ("a/b", "a_b"),
        ("..", "report"),
        ("sweep hidden=2 (a × b)", "sweep_hidden=2_a_b"),
    ],
)
def test_folder_name_is_one_safe_folder(target, folder):
    assert folder_name(target) == folder
