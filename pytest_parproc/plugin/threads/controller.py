"""The controller of ``--par-backend=threading``: runs the segments of the plan, concurrent tests
through the engine's thread pool and the serial lane in the main thread; replays, stops,
summarizes. The package docstring explains the approach."""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from ... import workerinfo
from ...parallel import Parallel, delayed
from .. import pytest_internals
from ..messages import StopRequest
from ..processes.controller import ProcessController as Controller
from ..replay import Replayer
from ..timing import RunTiming
from . import capture, serial_lane, warning_filters
from .fixtures import finish_other_parameters, install_fixture_slots
from .isolation import Isolation, isolation, update_current_test_var
from .limits import (
    Overrun,
    call_with_limit,
    left_running_text,
    main_thread_limit,
    overrun_reports,
    stopped_text,
    summary_line,
)
from .setup_state import ConcurrentSetupState, running


@dataclass
class _Result:
    index: int
    reports: list[pytest.TestReport]
    warnings: list[warnings.WarningMessage]
    worker_id: str
    busy_s: float
    stop: StopRequest | None
    #: not started: the run was stopping when its turn came
    skipped: bool = False


_protocol = threading.local()


class ThreadController(Controller):
    """The controller for ``--par-backend=threading``."""

    def __init__(self, config: pytest.Config, options: Any) -> None:
        super().__init__(config, options)
        #: node id -> why the test ran alone
        self.alone: dict[str, str] = {}
        self._in_flight = 0
        self._idle = threading.Condition()
        #: the engine's threads that ran tests: gone before the serial lane starts
        self._pool_threads: set[threading.Thread] = set()
        #: failures counted on the test threads, for --maxfail before any replay
        self._failures = 0
        #: Ctrl-C left tests running on threads: nothing may be torn down under them
        self._abandoned = False
        #: tests left running on their threads past --par-timeout
        self._left_running: dict[str, threading.Thread] = {}
        #: per-thread capture kept for those threads (``Isolation.keep_overrides``)
        self._kept_overrides = ExitStack()

    def pytest_report_header(self) -> str:
        return f"parproc: {self.options.n_jobs} threads in this process (backend threading)"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> bool | None:
        if not capture.in_isolated_test():
            return None  # the main thread's serial lane: pytest's own protocol
        # The protocol's own reports (the makereport wrapper also sees what unittest's subTest
        # and the like ask it to make); the wrapper's list only when pytest.exit cut it short.
        _protocol.reports = pytest_internals.run_protocol(item)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self) -> Any:
        # Each report as it is made: pytest.exit in a test's call still leaves its set-up.
        report = yield
        if capture.in_isolated_test():
            _protocol.reports.append(report)
        return report

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        super().pytest_terminal_summary(terminalreporter)
        if self.timing is None or self.config.get_verbosity() < -1:
            return
        verbose = self.config.get_verbosity() > 0
        for line in serial_lane.summary(self.alone, self._total, verbose):
            terminalreporter.write_line(line)
        if self._left_running:
            terminalreporter.write_line(summary_line(len(self._left_running), self._limit()))

    # -- the run ------------------------------------------------------------------------------
    def _run(self, session: pytest.Session) -> None:
        items = session.items
        if not items:
            return
        alone = serial_lane.reasons(self.config, items)
        self.alone = {items[index].nodeid: reason for index, reason in alone.items()}
        self._total = len(items)
        self._maxfail = int(self.config.getoption("maxfail") or 0)
        self.timing = timing = RunTiming(time.time())
        started = time.perf_counter()
        replayer = Replayer(self.config, items)
        pytest_internals.main_basetemp(self.config)  # created now, not raced for by threads
        plan = serial_lane.segments(items, alone)

        def end_segment(number: int) -> list[BaseException]:
            # what the next segment gets other parameters of: torn down now, as serially
            return finish_other_parameters(plan[number + 1].parameters)

        order = [segment.concurrent + segment.alone for segment in plan]
        state = self._state = ConcurrentSetupState(items, order, end_segment)
        restore_setup_state = pytest_internals.replace_setup_state(session, state)
        with ExitStack() as restore:
            restore.callback(restore_setup_state)
            restore.callback(install_fixture_slots())
            restore.callback(pytest_internals.replace_current_test_var(update_current_test_var))
            restore.callback(pytest_internals.thread_local_assertion_hooks())
            try:
                for number, segment in enumerate(plan):
                    if self._stop_now(session):
                        break
                    if segment.concurrent:
                        self._concurrent(session, items, segment.concurrent, replayer)
                    for index in segment.alone:
                        if self._stop_now(session):
                            break
                        self._alone(items[index], timing)
                    if number + 1 < len(plan) and state.segment_ended_without_its_last(number):
                        # its last test was left running: what it would have torn down
                        self._tear_down(lambda: end_segment(number))  # noqa: B023 - called now
            finally:
                if self._abandoned:
                    # Tests still run on threads with the rest in place; pytest's own
                    # sessionfinish finds nothing set up, so nothing is torn down under them.
                    restore.pop_all()
                    restore_setup_state()
                else:
                    self._teardown_rest(state)
                if not any(thread.is_alive() for thread in self._left_running.values()):
                    self._kept_overrides.close()  # else kept: such a thread may still go on
                timing.wall_s = time.perf_counter() - started
                timing.test_time_s += replayer.test_time_s

    def _stop_now(self, session: pytest.Session) -> bool:
        return bool(self.stop_request is not None or session.shouldfail or session.shouldstop)

    def _alone(self, item: pytest.Item, timing: RunTiming) -> None:
        started = time.perf_counter()

        def overrun() -> str:
            return stopped_text(item.nodeid, self._limit(), self.alone.get(item.nodeid))

        with running(item), main_thread_limit(self.options.timeout_s, overrun):
            try:
                self.stop_request = self._protocol(item, "in the main thread")
            except pytest.fail.Exception as error:  # the limit, outside the test's own phases
                self.finish_errors.append(("main", f"{item.nodeid}: {error}"))
        busy_s = time.perf_counter() - started
        timing.add_test("main", os.getpid(), busy_s)
        timing.test_time_s += busy_s

    def _protocol(self, item: pytest.Item, where: str) -> StopRequest | None:
        """Run one test; what it asks of the whole run (pytest.exit, KeyboardInterrupt)."""
        stop = None
        try:
            item.ihook.pytest_runtest_protocol(item=item, nextitem=None)
        except pytest.exit.Exception as error:
            stop = StopRequest("exit", str(error.msg), error.returncode)
        except KeyboardInterrupt:
            stop = StopRequest("interrupt", f"KeyboardInterrupt raised by {item.nodeid} {where}")
        finally:
            # A protocol cut short (by the above, or an error in a hook: pytest's internal
            # error) never reaches the teardown that tells the tests waiting for it to go on.
            self._state.forget(item)
        return stop

    def _teardown_rest(self, state: ConcurrentSetupState) -> None:
        """Tear down what a stopped run left set up (pytest does it in sessionfinish)."""
        self._tear_down(state.teardown_all)

    def _tear_down(self, action: Callable[[], list[BaseException] | None]) -> None:
        """A teardown in the main thread, bounded by --par-timeout; its errors go to the
        summary."""

        def overrun() -> str:
            return stopped_text("tearing down", self._limit(), None)

        errors: list[BaseException] = []
        with running(None), main_thread_limit(self.options.timeout_s, overrun):
            try:
                errors = action() or []
            except BaseException as raised:  # the limit, or what escaped a finalizer
                errors = [raised]
        for error in errors:
            self.finish_errors.append(("main", f"{type(error).__name__}: {error}"))

    # -- tests at the same time ---------------------------------------------------------------
    def _concurrent(
        self,
        session: pytest.Session,
        items: Sequence[pytest.Item],
        indices: list[int],
        replayer: Replayer,
    ) -> None:
        n_threads = min(self.options.n_jobs, len(indices))
        with isolation(self.config, items, indices) as isolated:
            self._isolated = isolated
            filters, unowned = isolated.filters, isolated.unowned
            parallel = Parallel(
                n_jobs=n_threads,
                backend="threading",
                batch_size=1,
                pre_dispatch="n_jobs",
                return_as="generator_unordered",
            )

            def tasks() -> Iterator[Any]:
                for index in indices:
                    if self.stopping:
                        return
                    yield delayed(self._run_one)(items[index], index, filters[index], n_threads)

            try:
                for result in parallel(tasks()):
                    self._replay(result, items[result.index], replayer)
                    if self._stop_now(session):
                        self.stopping = True
            except KeyboardInterrupt:
                # Tests running on threads cannot be interrupted: pytest reports the
                # interruption now, and they are left to the end of the process.
                self._abandoned = self.stopping = True
                raise
            except BaseException:
                self.stopping = True  # no new test starts; those running finish first
                raise
            finally:
                if not self._abandoned:
                    self._wait_idle()
            for message in unowned:
                replayer.warn_message(message, "")
        if isolated.kept is not None:
            self._kept_overrides.callback(isolated.kept.close)
        if not self._abandoned:
            for thread in self._pool_threads - {threading.current_thread()}:
                thread.join(30)  # told to stop when the call ended; a test after this is alone

    def _replay(self, result: _Result, item: pytest.Item, replayer: Replayer) -> None:
        if result.skipped:
            return
        assert self.timing is not None
        self.timing.add_test(result.worker_id, os.getpid(), result.busy_s)
        replayer.replay_reports(result.index, result.reports)
        for message in result.warnings:
            replayer.warn_message(message, item.nodeid)
        if result.stop is not None and self.stop_request is None:
            self.stop_request = result.stop

    def _run_one(self, item: pytest.Item, index: int, filters: Any, n_threads: int) -> _Result:
        name = threading.current_thread().name
        # (a single concurrent test runs on the calling thread: the engine runs n_jobs=1 there)
        worker_id = name.rsplit("-", 1)[-1] if name.startswith("parproc-thread-") else "w0"
        session = item.session
        if self.stopping or session.shouldfail or session.shouldstop:
            self._state.forget(item)
            return _Result(index, [], [], worker_id, 0.0, None, skipped=True)
        with self._idle:
            self._in_flight += 1
            self._pool_threads.add(threading.current_thread())
        try:
            limit_s = self.options.timeout_s
            if limit_s is None:
                result = self._run_test(item, index, filters, n_threads, worker_id, [])
            else:
                outcome = call_with_limit(
                    lambda made: self._run_test(item, index, filters, n_threads, worker_id, made),
                    limit_s,
                    f"parproc-test-{worker_id}",
                    lambda: self._state.waited_s(item),
                )
                result = self._overrun(item, index, worker_id, outcome)
            self._count_failures(item, result.reports, result.stop)
            assert self._isolated is not None
            if self._isolated.router is not None:
                self._isolated.router.repair()
            return result
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _run_test(
        self,
        item: pytest.Item,
        index: int,
        filters: Any,
        n_threads: int,
        worker_id: str,
        made: list[pytest.TestReport],
    ) -> _Result:
        """One test's protocol on this thread; ``made`` gets its reports as they are made."""
        started = time.perf_counter()
        isolated = self._isolated
        assert isolated is not None
        _protocol.reports = made
        workerinfo.enter_thread_worker(worker_id, n_threads)
        try:
            with (
                running(item),
                capture.isolated_test(isolated.capturing),
                warning_filters.warnings_of_test(filters) as caught,
            ):
                stop = self._protocol(item, f"on worker {worker_id}")
            busy_s = time.perf_counter() - started
            return _Result(index, _protocol.reports, list(caught), worker_id, busy_s, stop)
        finally:
            workerinfo.leave_thread_worker()

    def _overrun(
        self, item: pytest.Item, index: int, worker_id: str, outcome: _Result | Overrun
    ) -> _Result:
        """A test still running at --par-timeout: failed at the limit, its thread left."""
        if not isinstance(outcome, Overrun):
            return outcome
        self._state.abandon(item)
        self._left_running[item.nodeid] = outcome.thread
        assert self._isolated is not None
        self._isolated.keep_overrides = True
        text = left_running_text(item.nodeid, self._limit(), worker_id, outcome.stack)
        reports = overrun_reports(item, outcome, text)
        return _Result(index, reports, [], worker_id, outcome.elapsed_s, None)

    def _count_failures(
        self, item: pytest.Item, reports: list[pytest.TestReport], stop: StopRequest | None
    ) -> None:
        """Stop starting tests as soon as a thread sees the stop condition (-x, --maxfail, a
        stop request), not only once the main thread has replayed it."""
        failed = sum(1 for report in reports if report.failed and not hasattr(report, "wasxfail"))
        with self._idle:
            self._failures += failed
            if stop is not None or (self._maxfail and self._failures >= self._maxfail):
                self.stopping = True

    def _wait_idle(self) -> None:
        """Wait for the tests still running on threads (an interrupted run abandons them)."""
        with self._idle:
            while self._in_flight:
                self._idle.wait(0.1)

    _total = 0
    _maxfail = 0
    _state: ConcurrentSetupState
    _isolated: Isolation | None = None
