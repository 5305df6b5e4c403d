"""``--par-timeout`` under the threading backend. A thread cannot be stopped, so a test on a
pool thread runs on a thread of its own that the pool's thread waits for, up to the limit; past
it the test is reported failed and its thread is left running in the background. A test in the
main thread (the serial lane) is interrupted with SIGALRM, as pytest-timeout's signal method
does."""

from __future__ import annotations

import contextvars
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import pytest

from ..compat import timeout as timeout_plugin
from ..replay import failed_phase, phase_after

_T = TypeVar("_T")


def test_limit(
    item: pytest.Item, run_limit_s: float | None, run_limit: Callable[[], str]
) -> tuple[float | None, str]:
    """A test's limit in seconds, or None, and how to name it: pytest-timeout's for the test
    where it sets one (``compat.timeout``), else ``--par-timeout``'s."""
    found = timeout_plugin.item_limit(item)
    return found if found is not None else (run_limit_s, run_limit())


class PluginTimers:
    """pytest-timeout's timer hooks, registered beside pytest-timeout: no timer of its own for
    a test on a test thread (its limit is the one ``test_limit`` gives there)."""

    def __init__(self, on_test_thread: Callable[[], bool]) -> None:
        self._on_test_thread = on_test_thread

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_set_timer(self) -> bool | None:
        return True if self._on_test_thread() else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_cancel_timer(self) -> bool | None:
        return True if self._on_test_thread() else None


@dataclass
class Overrun:
    """A test still running at its limit: the reports it had made, and its thread's stack."""

    reports: list[pytest.TestReport]
    stack: str
    #: seconds since it started
    elapsed_s: float
    thread: threading.Thread


class _Box(Generic[_T]):
    """What the test's thread hands over, unless the waiting thread gave up on it first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.abandoned = False
        self.value: _T | None = None
        self.error: BaseException | None = None


def call_with_limit(
    run: Callable[[list[pytest.TestReport]], _T],
    limit_s: float,
    name: str,
    paused_s: Callable[[], float],
) -> _T | Overrun:
    """``run(reports)`` on a new daemon thread named ``name``, in a copy of this thread's
    context; its value (or exception) if it returns within ``limit_s`` plus ``paused_s()``
    (time it spent waiting for other tests, which have limits of their own), else an
    ``Overrun`` with the reports ``run`` had appended so far."""
    reports: list[pytest.TestReport] = []
    box: _Box[_T] = _Box()
    context = contextvars.copy_context()

    def target() -> None:
        value: _T | None = None
        error: BaseException | None = None
        try:
            value = context.run(run, reports)
        except BaseException as raised:  # handed to the waiting thread, or dropped
            error = raised
        with box.lock:
            if not box.abandoned:
                box.done, box.value, box.error = True, value, error

    started = time.monotonic()
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    while True:
        left_s = started + limit_s + paused_s() - time.monotonic()
        if left_s > 0:
            # (at least a moment: while the test waits for others, its deadline moves with time)
            thread.join(max(0.05, left_s))
        with box.lock:
            if box.done:
                if box.error is not None:
                    raise box.error
                return box.value  # type: ignore[return-value]
            if left_s <= 0:
                box.abandoned = True
                made = list(reports)
                break
    return Overrun(made, thread_stack(thread), time.monotonic() - started, thread)


def thread_stack(thread: threading.Thread) -> str:
    """The Python stack of a running thread, innermost call last."""
    frame = sys._current_frames().get(thread.ident or -1)  # documented, despite the underscore
    if frame is None:
        return "(the thread ended meanwhile)"
    return "".join(traceback.format_stack(frame)).rstrip()


def left_running_text(nodeid: str, limit: str, worker_id: str, stack: str) -> str:
    """The report of a test left running on its thread; ``limit`` names the setting."""
    return (
        f"pytest-parproc: {nodeid} ran past the time limit ({limit}) on thread {worker_id}. "
        "A thread cannot be stopped: it is left running in the background, with what it "
        "holds, and the other tests go on.\n\n--- the test's Python stack at the limit ---\n"
        + stack
    )


def stopped_text(what: str, limit: str, alone_because: str | None) -> str:
    """What stopped a test of the serial lane (or a teardown) in the main thread."""
    where = "in the main thread"
    if alone_because is not None:
        where += f", where it runs alone ({alone_because})"
    return (
        f"pytest-parproc: {what} ran past the time limit ({limit}) {where}: stopped where it "
        "was (SIGALRM)"
    )


def summary_line(count: int, limit: str) -> str:
    many = count > 1
    return (
        f"parproc: {count} test{'s' if many else ''} ran past the time limit ({limit}) and "
        f"{'were' if many else 'was'} left running on {'their threads' if many else 'its thread'}"
        " (a thread cannot be stopped)"
    )


def overrun_reports(item: pytest.Item, overrun: Overrun, text: str) -> list[pytest.TestReport]:
    """The reports of a test left running: those it made, then its phase at the limit as
    failed (its teardown too if it never got there, as passed)."""
    made = overrun.reports
    if made and made[-1].when == "teardown":
        return made
    when = phase_after((made[-1].when, made[-1].passed) if made else None)
    spent_s = max(0.0, overrun.elapsed_s - sum(report.duration for report in made))
    return [*made, *failed_phase(item, when, text, spent_s)]
