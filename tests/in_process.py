"""The console scripts ``nnexp-train`` and ``nnexp`` run inside the test process, as a user would
type them, giving what a subprocess gives (exit status, stdout, stderr) without the ~3 s of
imports every new process pays. What a command changes in its process is put back after it: the
environment, the working folder, ``sys.argv``, signal handlers, warning filters, logging handlers,
Hydra's global state, MLflow's active run and the command's context variables."""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import logging
import os
import signal
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from nnexp.signals import STOP_SIGNALS

#: The console scripts that run in-process.
ENTRY_POINTS = ("nnexp-train", "nnexp")

#: What a new Python process starts with (the documented default filters, first match wins).
DEFAULT_WARNING_FILTERS = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)


def replaces_process(command: str, args: Sequence[str]) -> bool:
    """Whether the command ends by replacing its process: ``nnexp server`` becomes
    ``mlflow server``."""
    return command == "nnexp" and "server" in args


class Restart(BaseException):
    """The command asked to restart its process under ``environ`` (``machine.restart_with``)."""

    def __init__(self, environ: Mapping[str, str]):
        super().__init__("restart")
        self.environ = dict(environ)


def restart_with(environ: Mapping[str, str]) -> None:
    """``machine.restart_with`` in-process: raise Restart where the command would restart."""
    if dict(environ) != dict(os.environ):
        raise Restart(environ)


def run(
    command: str, args: Sequence[str], cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess:
    """``command args…`` run from ``cwd`` under exactly ``env``, in this process; its exit status
    (a traceback and 1 for an exception that escapes, as Python would) and what it printed."""
    if command not in ENTRY_POINTS:
        raise ValueError(f"{command} is not an nnexp entry point ({', '.join(ENTRY_POINTS)})")
    if replaces_process(command, args):
        raise ValueError(f"{command} {' '.join(args)} replaces its process: run it as one")
    out, err, final_env = io.StringIO(), io.StringIO(), {}
    argv = [str(Path(sys.executable).parent / command), *args]
    try:
        with (
            isolated(cwd, env, argv),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = contextvars.copy_context().run(_exit_status, _entry_point(command), args)
            final_env = dict(os.environ)
    except Restart as restart:
        again = subprocess.run(
            argv, cwd=cwd, env=restart.environ, capture_output=True, text=True, check=False
        )
        code, final_env = again.returncode, restart.environ
        out.write(again.stdout)
        err.write(again.stderr)
    done = Finished([command, *args], code, out.getvalue(), err.getvalue())
    done.environ = final_env
    return done


class Finished(subprocess.CompletedProcess):
    """A command run in-process, with the environment it left (``environ``) at its end: what
    anything the process ran at exit would have read."""

    environ: dict[str, str]


def _entry_point(command: str) -> Callable[[list[str]], None]:
    if command == "nnexp":
        from nnexp.cli import main

        return main
    from nnexp.train import main as train_main

    return lambda args: train_main()


def _exit_status(main: Callable[[list[str]], None], args: Sequence[str]) -> int:
    """The status the process would exit with: sys.exit's, 0 on return, 1 after a traceback."""
    try:
        main(list(args))
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        _end_active_runs()
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _end_active_runs() -> None:
    """End a fluent MLflow run still open, as MLflow's exit hook would at the process's end."""
    if "mlflow" in sys.modules:
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run()


@contextlib.contextmanager
def isolated(cwd: Path, env: Mapping[str, str], argv: list[str]) -> Iterator[None]:
    """For the block: ``cwd``, exactly ``env``, ``argv``, Python's default warning filters with
    warnings printed to stderr, and a restart of the process raised as Restart; afterwards all of
    it as before, with the signal handlers, the root logger's handlers and level, and Hydra's
    global state."""
    from hydra.core.global_hydra import GlobalHydra

    from nnexp.provenance import machine

    saved_restart = machine.restart_with
    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, Path.cwd()
    handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    try:
        os.environ.clear()
        os.environ.update(env)
        sys.argv = argv
        os.chdir(cwd)
        machine.restart_with = restart_with
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in DEFAULT_WARNING_FILTERS:
                warnings.filterwarnings(action, category=category, module=module, append=True)
            warnings.showwarning = _print_warning
            yield
    finally:
        machine.restart_with = saved_restart
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        for handler in root.handlers:
            if handler not in root_handlers:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(root_level)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        GlobalHydra.instance().clear()


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_in_a_new_process(
    runs: Sequence[tuple[str, Sequence[str], Path, Mapping[str, str]]],
) -> list[tuple[Finished, bool]]:
    """Each ``(command, args, cwd, env)`` run in turn by ``run`` inside one new Python process
    (the tests' environment, nothing of nnexp imported): what each gives, and whether ``mlflow``
    was imported by its end. One process start for many commands whose subject is what a fresh
    process imports."""
    request = [[command, list(args), str(cwd), dict(env)] for command, args, cwd, env in runs]
    done = subprocess.run(
        [sys.executable, __file__],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
    )
    return [
        (Finished(args, code, out, err), loaded)
        for args, code, out, err, loaded in json.loads(done.stdout.splitlines()[-1])
    ]


def _serve(request: list) -> list:
    """``run`` each request of ``run_in_a_new_process`` in this process."""
    results = []
    for command, args, cwd, env in request:
        done = run(command, args, Path(cwd), env)
        results.append(
            [done.args, done.returncode, done.stdout, done.stderr, "mlflow" in sys.modules]
        )
    return results


if __name__ == "__main__":
    print(json.dumps(_serve(json.load(sys.stdin))))
