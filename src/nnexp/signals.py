"""The signals that ask a process to end (SIGINT, SIGTERM, SIGHUP, SIGQUIT) as exceptions, so a
run or sweep can end KILLED with what it logged so far, and never lost when Python swallows the
exception. The first one starts the stop; more of them while its clean-up runs are ignored (a
second SIGTERM from ``timeout`` to its group, a second Ctrl-C) so the clean-up is not cut short."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: The signals that ask the process to end; within ``signals_raise`` each raises an exception.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class Terminated(BaseException):
    """The process received a signal that asks it to end (SIGTERM, SIGHUP, SIGQUIT)."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(f"terminated by signal {signum}")
        self.signum = int(signum)


#: The signal received whose exception has not yet left a ``signals_raise`` block.
_pending: list[int] = []
#: The stop under way: the first signal received in the outermost ``signals_raise`` block.
_stopping: list[int] = []
#: Open ``signals_raise`` blocks, and what to do at once when a stop begins (``on_stop``).
_depth: list[int] = [0]
_on_stop: list[Callable[[int], None]] = []


def stop_exception(signum: int) -> BaseException:
    """KeyboardInterrupt for SIGINT, Terminated for the other stop signals."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _on_signal(signum: int, frame) -> None:
    if _stopping:
        return
    _stopping.append(signum)
    _pending[:] = [signum]
    for callback in list(_on_stop):
        callback(signum)
    raise stop_exception(signum)


def raise_pending() -> None:
    """Raise again a signal whose exception was swallowed: Python only prints an exception raised
    while a weakref callback or ``__del__`` runs (SQLAlchemy's clean-up, for one)."""
    if _pending:
        raise stop_exception(_pending.pop())


@contextmanager
def on_stop(callback: Callable[[int], None]) -> Iterator[None]:
    """Within the block, ``callback(signum)`` runs inside the handler of the first stop signal,
    before its exception: for what must happen before anything else (a sweep's stop marker)."""
    _on_stop.append(callback)
    try:
        yield
    finally:
        _on_stop.remove(callback)


@contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block a stop signal raises KeyboardInterrupt (SIGINT) or Terminated (in the
    main thread, where Python allows it); a swallowed one is raised again at the block's end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _on_signal) for signum in STOP_SIGNALS}
    unraisable = sys.unraisablehook
    sys.unraisablehook = _quiet_pending_stop(unraisable)
    _depth[0] += 1
    try:
        yield
        raise_pending()
    except (KeyboardInterrupt, Terminated):
        _pending.clear()
        raise
    finally:
        _depth[0] -= 1
        if _depth[0] == 0:
            _stopping.clear()
        sys.unraisablehook = unraisable
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _quiet_pending_stop(previous: Callable) -> Callable:
    """An unraisable-exception hook that prints nothing for a stop signal's exception Python
    swallowed (raised while a weakref callback or ``__del__`` ran): it is pending, and
    ``raise_pending`` raises it again where it is handled. Anything else goes to ``previous``."""

    def hook(unraisable) -> None:
        if _pending and isinstance(unraisable.exc_value, (KeyboardInterrupt, Terminated)):
            return
        previous(unraisable)

    return hook


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Within the block a stop signal is only noted (the first one begins the stop, as in
    ``signals_raise``: its ``on_stop`` callbacks run at once); it raises when the block ends: for
    a write that must not be cut between its commit and its bookkeeping. (A handler swap, not a
    signal mask: Python runs handlers in the main thread whichever thread the signal reached.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def note(signum: int, frame) -> None:
        if _stopping:
            return
        _stopping.append(signum)
        for callback in list(_on_stop):
            callback(signum)
        caught.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:
        _pending[:] = [caught[0]]
        raise stop_exception(caught[0])


#: Stop signals a helper process (not a job) should outlive: a closed terminal, Ctrl-\.
HELPER_HELD = (signal.SIGHUP, signal.SIGQUIT)


@contextmanager
def held_for_helpers() -> Iterator[None]:
    """Within the block SIGHUP and SIGQUIT are blocked in this thread, so a helper process started
    here inherits them blocked and outlives a closed terminal until its parent is done with it;
    one that arrives meanwhile reaches this process at the block's end."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HELPER_HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELPER_HELD)
