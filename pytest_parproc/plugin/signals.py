"""SIGTERM to the main process ends a parallel run as Ctrl-C does: a prompt stop, pytest's
summary of what ran, exit code 2, and no worker left behind."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"pytest-parproc: stopped by {signal.Signals(signum).name}")


def _reset_in_child() -> None:
    # A worker forked during the run must die of SIGTERM as usual (pools stop workers with it).
    if signal.getsignal(signal.SIGTERM) is _interrupt:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the run lasts, SIGTERM raises KeyboardInterrupt in the main thread. Left alone
    where SIGTERM already has a handler (a plugin's, the caller's) or off the main thread."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
