"""A pytest plugin: a session that leaves a new file or folder at the top of its root folder (the
checkout) fails, naming it. Tests write under their own temporary folders; a path taken relative
to the test process's working folder (an MLflow store, ./mlruns, outputs/) lands in the checkout
instead, where the next run reads it and `git add -A` takes it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

#: What a session may add: caches, and the load tests' figures.
ALLOWED = frozenset({".hypothesis", ".pytest_cache", "__pycache__", "test-artifacts"})

_BEFORE = pytest.StashKey[frozenset[str]]()


def entries(folder: Path) -> frozenset[str]:
    """The names at the top of ``folder``."""
    return frozenset(path.name for path in folder.iterdir())


def pytest_sessionstart(session: pytest.Session) -> None:
    session.stash[_BEFORE] = entries(session.config.rootpath)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist the controller checks, once, after every worker has ended."""
    if hasattr(session.config, "workerinput"):
        return
    root = session.config.rootpath
    left = sorted(entries(root) - session.stash[_BEFORE] - ALLOWED)
    if not left:
        return
    line = (
        f"error: the session left {', '.join(left)} in {root}: a test (or a command beside the "
        "suite) wrote relative to its working folder; give that path a folder under tmp_path"
    )
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")  # after pytest-xdist's progress line, which ends without one
        reporter.write_sep("=", "left in the checkout", red=True)
        reporter.write_line(line, red=True)
    else:
        print(line, file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
