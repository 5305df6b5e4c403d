"""Tests on a thread of the engine's pool (or, under ``--par-timeout``, each on a thread of its
own that the pool's thread waits for), in turns (``admission``), their reports kept for the
main thread to replay."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from ... import workerinfo
from ...parallel.nesting import as_in_tests
from .. import pytest_internals
from ..compat import logging_plugin
from ..compat.logging_plugin import record_values
from ..messages import StopRequest
from ..stopping import run_test, stop_wanted
from . import capture, warning_filters
from .admission import GROUP_S, Admission
from .isolation import Isolation
from .limits import Overrun, call_with_limit, left_running_text, overrun_reports, test_limit
from .setup_state import ConcurrentSetupState, running


@dataclass
class ThreadResult:
    """What one test on a thread brings back to the main thread."""

    index: int
    reports: list[pytest.TestReport]
    warnings: list[warnings.WarningMessage]
    worker_id: str
    busy_s: float
    stop: StopRequest | None
    #: not started: the run was stopping when its turn came
    skipped: bool = False
    #: CPU seconds its thread spent on it (``time.thread_time``)
    cpu_s: float = 0.0
    #: it ran in the main thread (a segment's one concurrent test): no test beside it
    on_main_thread: bool = False


@dataclass
class Turn:
    """What one engine task brings back: its tests' results, and what escaped a test's
    protocol (pytest's internal error), raised once the results before it are replayed."""

    results: list[ThreadResult]
    error: BaseException | None = None


class RunState(Protocol):
    """What the runner reads and sets on the controller of the run."""

    #: no new test starts
    stopping: bool

    def limit_text(self) -> str: ...


#: The reports of the test on this thread, as its protocol makes them.
_protocol = threading.local()


def protocol_on_test_thread(item: pytest.Item) -> bool | None:
    """``pytest_runtest_protocol`` for a test on a test thread: the protocol returns its reports
    instead of logging them (the main thread replays them). None elsewhere (the serial lane
    runs pytest's own protocol)."""
    if not capture.in_isolated_test():
        return None
    # The protocol's own reports (the makereport wrapper also sees what unittest's subTest and
    # the like ask it to make); the wrapper's list only when pytest.exit cut it short.
    _protocol.reports = pytest_internals.run_protocol(item)
    return True


def in_test_thread() -> bool:
    """Whether this is a concurrent test's own thread (not the main thread running one)."""
    return capture.in_isolated_test() and threading.current_thread() is not threading.main_thread()


def keep_report(report: pytest.TestReport) -> None:
    """Each report as it is made: pytest.exit in a test's call still leaves its set-up."""
    if capture.in_isolated_test():
        records = capture.take_phase_records()
        if records:
            setattr(report, logging_plugin.ATTRIBUTE, [record_values(r) for r in records])
        _protocol.reports.append(report)


class ThreadRunner:
    """Runs single tests on threads and keeps count of them: how many are in flight, which
    threads ran them, the failures seen (for ``--maxfail`` before any replay), and the tests
    left running past ``--par-timeout``."""

    def __init__(
        self, run: RunState, state: ConcurrentSetupState, timeout_s: float | None, maxfail: int
    ) -> None:
        self.run = run
        self.state = state
        self.timeout_s = timeout_s
        self.maxfail = maxfail
        #: what the concurrent part of the run works with (set for each concurrent segment)
        self.isolated: Isolation | None = None
        #: how many of the segment's tests start at once, in which order (set with it)
        self.admission: Admission | None = None
        self._in_flight = 0
        self._idle = threading.Condition()
        #: the engine's threads that ran tests: gone before the serial lane starts
        self.pool_threads: set[threading.Thread] = set()
        #: failures counted on the test threads
        self._failures = 0
        #: tests left running on their threads past --par-timeout: node id -> thread
        self.left_running: dict[str, threading.Thread] = {}
        #: the limits they ran past, named (--par-timeout, or pytest-timeout's for the test)
        self.limits_passed: set[str] = set()
        #: what each thread runs now, for the live progress: worker id -> (index, started)
        self.running: dict[str, tuple[int, float]] = {}

    def protocol(self, item: pytest.Item, where: str) -> StopRequest | None:
        """Run one test; what it asks of the whole run (pytest.exit, KeyboardInterrupt)."""
        try:
            return run_test(item.ihook, item, None, where)
        finally:
            # A protocol cut short (by the above, or an error in a hook: pytest's internal
            # error) never reaches the teardown that tells the tests waiting for it to go on.
            self.state.forget(item)

    def run_turn(
        self, items: Sequence[pytest.Item], indices: list[int], filters: Any, n_threads: int
    ) -> Turn:
        """An engine task: the segment's next test (``indices``: the segment's tests, in order;
        ``filters``: each test's warning filters, by index), once the admission lets it start;
        while tests run one at a time, the next ones too, for about ``GROUP_S``."""
        admission = self.admission
        assert admission is not None
        turn = Turn([])
        position = admission.first()
        started = time.perf_counter()  # (its turn: from its first test, not its wait)
        while position is not None:
            index = indices[position]
            try:
                turn.results.append(self.run_one(items[index], index, filters[index], n_threads))
            except BaseException as error:  # (pytest's internal error): after those before it
                turn.error = error
                admission.then(more=False)
                break
            more = (
                admission.concurrency.limit == 1
                and not self.run.stopping
                and time.perf_counter() - started < GROUP_S
            )
            position = admission.then(more)
        return turn

    def run_one(self, item: pytest.Item, index: int, filters: Any, n_threads: int) -> ThreadResult:
        """One test of a turn, unless the run is stopping."""
        name = threading.current_thread().name
        # (a single concurrent test runs on the calling thread: the engine runs n_jobs=1 there)
        worker_id = name.rsplit("-", 1)[-1] if name.startswith("parproc-thread-") else "w0"
        if self.run.stopping or stop_wanted(item.session):
            self.state.forget(item)
            return ThreadResult(index, [], [], worker_id, 0.0, None, skipped=True)
        with self._idle:
            self._in_flight += 1
            self.pool_threads.add(threading.current_thread())
        self.running[worker_id] = (index, time.time())
        try:
            with as_in_tests():  # a test's own Parallel calls behave as in a serial run
                return self._run_one(item, index, filters, n_threads, worker_id)
        finally:
            self.running.pop(worker_id, None)
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _run_one(
        self, item: pytest.Item, index: int, filters: Any, n_threads: int, worker_id: str
    ) -> ThreadResult:
        limit_s, limit = test_limit(item, self.timeout_s, self.run.limit_text)
        if limit_s is None:
            result = self._run_test(item, index, filters, n_threads, worker_id, [])
        else:
            outcome = call_with_limit(
                lambda made: self._run_test(item, index, filters, n_threads, worker_id, made),
                limit_s,
                f"parproc-test-{worker_id}",
                lambda: self.state.waited_s(item),
            )
            result = self._overrun(item, index, worker_id, outcome, limit)
        self._count_failures(item, result.reports, result.stop)
        assert self.isolated is not None
        if self.isolated.router is not None:
            self.isolated.router.repair()
        return result

    def _run_test(
        self,
        item: pytest.Item,
        index: int,
        filters: Any,
        n_threads: int,
        worker_id: str,
        made: list[pytest.TestReport],
    ) -> ThreadResult:
        """One test's protocol on this thread; ``made`` gets its reports as they are made."""
        started, cpu_started = time.perf_counter(), time.thread_time()
        isolated = self.isolated
        assert isolated is not None
        _protocol.reports = made
        workerinfo.enter_thread_worker(worker_id, n_threads)
        try:
            with (
                running(item),
                capture.isolated_test(isolated.capturing),
                warning_filters.warnings_of_test(filters) as caught,
            ):
                stop = self.protocol(item, f"on worker {worker_id}")
            busy_s = time.perf_counter() - started
            cpu_s = time.thread_time() - cpu_started
            reports, warned = _protocol.reports, list(caught)
            main = threading.current_thread() is threading.main_thread()
            return ThreadResult(
                index, reports, warned, worker_id, busy_s, stop, cpu_s=cpu_s, on_main_thread=main
            )
        finally:
            workerinfo.leave_thread_worker()

    def _overrun(
        self,
        item: pytest.Item,
        index: int,
        worker_id: str,
        outcome: ThreadResult | Overrun,
        limit: str,
    ) -> ThreadResult:
        """A test still running at --par-timeout: failed at the limit, its thread left."""
        if not isinstance(outcome, Overrun):
            return outcome
        self.state.abandon(item)
        self.left_running[item.nodeid] = outcome.thread
        self.limits_passed.add(limit)
        assert self.isolated is not None
        self.isolated.keep_overrides = True
        text = left_running_text(item.nodeid, limit, worker_id, outcome.stack)
        reports = overrun_reports(item, outcome, text)
        return ThreadResult(index, reports, [], worker_id, outcome.elapsed_s, None)

    def _count_failures(
        self, item: pytest.Item, reports: list[pytest.TestReport], stop: StopRequest | None
    ) -> None:
        """Stop starting tests as soon as a thread sees the stop condition (-x, --maxfail, a
        stop request), not only once the main thread has replayed it."""
        failed = sum(1 for report in reports if report.failed and not hasattr(report, "wasxfail"))
        with self._idle:
            self._failures += failed
            if stop_wanted(item.session, stop, self._failures, self.maxfail):
                self.run.stopping = True

    def wait_idle(self) -> None:
        """Wait for the tests still running on threads (an interrupted run abandons them)."""
        with self._idle:
            while self._in_flight:
                self._idle.wait(0.1)

    def join_pool_threads(self) -> None:
        """The engine's threads were told to stop when its call ended: a test after this is
        alone in the process."""
        for thread in self.pool_threads - {threading.current_thread()}:
            thread.join(30)
