"""The exit-code policy of every entry point, and `nnexp`'s mapping of errors to one line."""

import signal

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError

from nnexp import cli
from nnexp.errors import RunFailed, StoreFailed, TrainingDiverged, UserError, exit_code
from nnexp.signals import Terminated


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (RunFailed("disk full"), 1),
        (TrainingDiverged("lower optim.lr"), 1),
        (StoreFailed("server gone"), 1),
        (UserError("bad value"), 2),
        (ConfigKeyError("no such key"), 2),
        (KeyboardInterrupt(), 130),
        (Terminated(signal.SIGTERM), 143),
        (Terminated(signal.SIGHUP), 129),
    ],
)
def test_exit_code(err, code):
    assert exit_code(err) == code


def test_terminated_names_its_signal():
    assert str(Terminated(signal.SIGTERM)) == "terminated by signal 15"


def omegaconf_error(args):
    """What reproduce meets in a logged config.yaml with a key this code does not know."""
    from nnexp.config import schema as config

    OmegaConf.merge(OmegaConf.structured(config.Config), {"model": {"width": 3}})


def run_failed(args):
    raise RunFailed("the MLflow store at sqlite:///x failed: no space left on the device")


def terminated(args):
    raise Terminated(signal.SIGTERM)


@pytest.mark.parametrize(
    ("handler", "code", "line"),
    [
        (omegaconf_error, 2, "error: Key 'width' not in 'ModelSchema'"),
        (run_failed, 1, "error: the MLflow store at sqlite:///x failed"),
        (terminated, 143, None),
    ],
)
def test_nnexp_ends_every_error_with_one_line_and_the_policy_code(
    monkeypatch, capsys, handler, code, line
):
    """`nnexp reproduce` (any subcommand) maps RunFailed, OmegaConf's errors and SIGTERM by the
    one policy, with no traceback."""
    monkeypatch.setattr(cli, "_reproduce", handler)
    with pytest.raises(SystemExit) as ended:
        cli.main(["reproduce", "0" * 32])
    assert ended.value.code == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [text for text in err.splitlines() if text.strip()]
    assert lines == [] if line is None else (len(lines) == 1 and lines[0].startswith(line)), err
