"""SIGTERM to the main process ends a parallel run as Ctrl-C does: pytest's summary of what
ran, exit code 2, and no worker left behind. While process workers run tests, the first Ctrl-C
(or SIGTERM) lets them tear their fixtures down, within a bound; a second stops them at once
(``graceful_interrupts``)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest

#: The process whose handlers these are (a process forked from it must not act on them).
_owner = os.getpid()


def _elsewhere(signum: int) -> bool:
    """In a process forked while a handler of ours was installed, where the fork hook below did
    not reset it: the signal does there what it does by default (a pool's SIGTERM ends its
    worker), and the handler must do nothing else. In CI, a multiprocessing worker took the
    pool's SIGTERM for the user's and asked the whole run to stop."""
    if os.getpid() == _owner:
        return False
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return True


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if not _elsewhere(signum):
        raise KeyboardInterrupt(f"pytest-parproc: stopped by {signal.Signals(signum).name}")


#: handlers installed by this module (a worker forked meanwhile must not keep them)
_ours: set[Any] = {_interrupt}


_SIGNALS = (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGALRM", signal.SIGTERM))
#: the forking thread's signal mask before a fork, where ``_before_fork`` blocked ours
_masks = threading.local()


def _before_fork() -> None:
    """While a handler of ours is installed, the signals stay blocked across the fork: a signal
    sent to the child before its hooks have run is kept pending (CPython drops one its handler
    caught then) and acts once the child has the default action back."""
    if hasattr(signal, "pthread_sigmask") and any(
        signal.getsignal(signum) in _ours for signum in _SIGNALS
    ):
        _masks.previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)


def _unblock() -> None:
    previous = getattr(_masks, "previous", None)
    if previous is not None:
        _masks.previous = None
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _reset_in_child() -> None:
    # A worker forked during the run must die of SIGTERM as usual (pools stop workers with it).
    global _owner
    _owner = os.getpid()
    try:
        for signum in _SIGNALS:
            if signal.getsignal(signum) in _ours:
                signal.signal(signum, signal.SIG_DFL)
    finally:
        _unblock()  # a signal sent meanwhile acts now, by default


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_unblock, after_in_child=_reset_in_child
    )


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


@contextmanager
def graceful_interrupts(on_first: Callable[[str], None], grace_s: float) -> Iterator[None]:
    """While the block runs in the main thread: the first SIGINT or SIGTERM calls
    ``on_first(signal name)`` (which asks the workers to stop and tear down) and gives the block
    ``grace_s`` seconds to end by itself, after which KeyboardInterrupt is raised in it; a
    second signal raises KeyboardInterrupt at once. Elsewhere, or without SIGALRM, a no-op."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return
    state = {"first": True}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if _elsewhere(signum):
            return
        name = signal.Signals(signum).name
        if not state["first"]:
            raise KeyboardInterrupt(f"pytest-parproc: stopped at once by a second {name}")
        state["first"] = False
        signal.setitimer(signal.ITIMER_REAL, grace_s)
        on_first(name)

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if not _elsewhere(signum) and not state["first"]:
            raise KeyboardInterrupt(
                f"pytest-parproc: the workers had not torn down within {grace_s:g} s"
            )

    _ours.update((on_signal, on_alarm))
    saved = {
        signum: signal.signal(signum, handler)
        for signum, handler in (
            (signal.SIGINT, on_signal),
            (signal.SIGTERM, on_signal),
            (signal.SIGALRM, on_alarm),
        )
    }
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        _ours.difference_update((on_signal, on_alarm))


class InterruptGate:
    """Installed once around a loop in the main thread (``with gate.installed():``), it lets
    Ctrl-C (or SIGTERM) act at once, except inside ``with gate:`` (the replay of one test's
    reports), where it takes effect right after the block: every plugin hears of that test or
    none does (a SIGINT in the middle left the terminal counting a test that junitxml never
    wrote). Entering the gate costs an attribute, not the two handler swaps per signal that a
    test's replay would otherwise pay. Off the main thread, a no-op."""

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._holding = False
        self._caught: list[int] = []
        self._previous: dict[int, Any] = {}

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handler = self._on_signal  # (one bound method: a worker forked meanwhile drops it)
        _ours.add(handler)
        self._previous = {signum: signal.signal(signum, handler) for signum in self._SIGNALS}
        try:
            yield
        finally:
            for signum, previous in self._previous.items():
                signal.signal(signum, previous)
            self._previous = {}
            _ours.discard(handler)

    def __enter__(self) -> None:
        self._holding = True

    def __exit__(self, *exc_info: object) -> None:
        self._holding = False
        if self._caught:
            signum, self._caught = self._caught[0], []
            self._forward(signum, None)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if _elsewhere(signum):
            return
        if self._holding:
            self._caught.append(signum)
        else:
            self._forward(signum, frame)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        then = self._previous.get(signum, signal.SIG_DFL)
        if callable(then):
            then(signum, frame)  # raises KeyboardInterrupt, as the signal would have
        elif then == signal.SIG_DFL:
            raise KeyboardInterrupt


@contextmanager
def main_thread_limit(limit_s: float | None, message: Callable[[], str]) -> Iterator[None]:
    """Bound what runs in the main thread: at the limit, SIGALRM's handler fails it where it
    is (``pytest.fail`` there, so the report shows that stack), and re-arms for what runs next
    (a teardown that hangs as well). Code stuck in C without returning to Python is not
    interrupted. A no-op without a limit, off the main thread, or where there is no SIGALRM."""
    if (
        limit_s is None
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    armed = [True]

    def on_alarm(signum: int, frame: object) -> None:
        __tracebackhide__ = True  # the report ends where the test was stopped
        # (not once the block is ending: a late alarm is ignored)
        if not _elsewhere(signum) and armed[0]:
            signal.setitimer(signal.ITIMER_REAL, limit_s)
            pytest.fail(message())

    _ours.add(on_alarm)
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _ours.discard(on_alarm)
