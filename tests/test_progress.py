"""A sweep's progress line, as the launching process shows it: in a pipe a plain line per ended
job, on a terminal (a pseudo-terminal here) one live line; for the basic, joblib and Optuna
launchers. The content is checked, never the timing. Untracked sweeps keep these fast."""

from __future__ import annotations

import os
import pty
import re
import subprocess

import pytest

from conftest import BIN, clean_env, run_cli

pytestmark = pytest.mark.slow

#: Three points, one rejected by the config check (hidden must be ≥ 1): 2 finish, 1 fails.
POINTS = ["model.hidden=1,2,0", "optim.epochs=5", "tracking=off"]
PLAIN = re.compile(
    r"^sweep: (\d)/(\d|\?) done, (\d) failed · elapsed \d+:\d\d:\d\d · left ~(\S+) · "
    r"best test_cost (\S+) · job (\d) (finished|failed): (.*)$"
)
#: Cursor moves and line erasures (each starts the line anew) and colours (dropped).
REDRAW, COLOUR = re.compile(r"\r|\x1b\[2K|\x1b\[\d*[ABF]"), re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain_lines(stderr: str) -> list[re.Match]:
    """The progress lines of a piped sweep's stderr."""
    return [m for m in map(PLAIN.match, stderr.splitlines()) if m]


@pytest.mark.parametrize(
    "launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]], ids=["basic", "joblib"]
)
def test_a_piped_sweep_prints_a_line_per_ended_job(tmp_path, launcher):
    done = run_cli("nnexp-train", "-m", *POINTS, *launcher, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = plain_lines(done.stderr)
    assert [(m[1], m[2]) for m in lines] == [("1", "3"), ("2", "3"), ("3", "3")]
    assert [int(m[3]) for m in lines][-1] == 1
    assert sorted(m[6] for m in lines) == ["0", "1", "2"]
    statuses = {m[8].split()[0]: m[7] for m in lines}
    assert statuses == {
        "model.hidden=1": "finished",
        "model.hidden=2": "finished",
        "model.hidden=0": "failed",
    }
    finished = [float(m[8].rsplit("test_cost=", 1)[1]) for m in lines if m[7] == "finished"]
    assert float(lines[-1][5]) == min(finished)
    assert lines[-1][4] == "0:00:00"


def test_an_optuna_sweep_counts_its_trials(tmp_path):
    done = run_cli(
        "nnexp-train",
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=3",
        "optim.epochs=5",
        "tracking=off",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = plain_lines(done.stderr)
    assert [(m[1], m[2], m[3]) for m in lines] == [
        ("1", "3", "0"),
        ("2", "3", "0"),
        ("3", "3", "0"),
    ]
    assert float(lines[-1][5]) > 0


def run_on_a_terminal(tmp_path, *args: str) -> tuple[int, str]:
    """``nnexp-train args…`` with stdout and stderr on a pseudo-terminal; its exit code and all
    it wrote there."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(BIN / "nnexp-train"), *args],
        cwd=tmp_path,
        env=clean_env(COLUMNS="160", TERM="xterm"),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=600), b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_the_sweep_has_one_live_line(tmp_path):
    code, output = run_on_a_terminal(tmp_path, "-m", *POINTS)
    assert code == 1, output
    text = COLOUR.sub("", REDRAW.sub("\n", output))
    states = [line.strip() for line in text.splitlines() if line.strip().startswith("sweep ")]
    assert states, output
    final = states[-1]
    assert re.search(r"3/3 done, 1 failed", final), final
    assert re.search(r"best test_cost 0\.\d+", final), final
    assert re.search(r"elapsed, left ~0:00:00", final), final
    assert not plain_lines(text), "the pipe's lines appear on a terminal"
    failure = [line for line in text.splitlines() if "model.hidden=0" in line and "failed:" in line]
    assert failure and failure[0].startswith("error: job 2"), "the failure is glued to the line"
