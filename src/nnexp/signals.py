"""SIGINT and SIGTERM as exceptions, so a run or sweep can end KILLED with what it logged so far,
and never lost when Python swallows the exception."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The signals that ask the process to end; within ``signals_raise`` each raises an exception.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(BaseException):
    """The process received a signal that asks it to end (SIGTERM)."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(f"terminated by signal {signum}")
        self.signum = int(signum)


#: The signal received whose exception has not yet left a ``signals_raise`` block.
_pending: list[int] = []


def _stop_exception(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _on_signal(signum: int, frame) -> None:
    _pending[:] = [signum]
    raise _stop_exception(signum)


def raise_pending() -> None:
    """Raise again a signal whose exception was swallowed: Python only prints an exception raised
    while a weakref callback or ``__del__`` runs (SQLAlchemy's clean-up, for one)."""
    if _pending:
        raise _stop_exception(_pending.pop())


@contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block SIGINT raises KeyboardInterrupt and SIGTERM Terminated (in the main
    thread, where Python allows it); a swallowed one is raised again at the block's end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _on_signal) for signum in STOP_SIGNALS}
    try:
        yield
        raise_pending()
    except (KeyboardInterrupt, Terminated):
        _pending.clear()
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM are only noted; one that came in raises when the block
    ends: for a write that must not be cut between its commit and its bookkeeping. (A handler
    swap, not a signal mask: Python runs handlers in the main thread whichever thread the signal
    reached.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda number, frame: caught.append(number))
        for signum in STOP_SIGNALS
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:
        _pending[:] = [caught[0]]
        raise _stop_exception(caught[0])
