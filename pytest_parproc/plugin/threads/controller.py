"""The controller of ``--par-backend=threading``: runs the plan's segments, the concurrent tests
through the engine's thread pool and the serial lane in the main thread; replays, stops,
summarizes. The package docstring explains the approach."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from typing import Any

import pytest

from ...parallel import Parallel, delayed
from .. import compat, pytest_internals
from ..options import ParprocOptions
from ..pytest_internals import threads as thread_internals
from ..replay import Replayer, release_held
from ..report.events import SERIAL_LANE
from ..report.timeline import RunFacts
from ..run import RunController
from ..signals import InterruptGate, main_thread_limit
from ..stopping import run_test
from ..timing import RunTiming
from . import serial_lane
from .admission import Admission, Concurrency
from .capture import in_isolated_test
from .confirm import Confirmations, call_failed
from .fixtures import finish_other_parameters, install_fixture_slots
from .guidance import CpuShare
from .isolation import isolation, locations_before_threads, update_current_test_var
from .limits import PluginTimers, stopped_text, summary_line
from .runner import (
    ThreadResult,
    ThreadRunner,
    in_test_thread,
    keep_report,
    protocol_on_test_thread,
)
from .setup_state import ConcurrentSetupState, running


class ThreadController(RunController):
    """The controller for ``--par-backend=threading``."""

    def __init__(self, config: pytest.Config, options: ParprocOptions) -> None:
        super().__init__(config, options)
        #: node id -> why the test ran alone
        self.alone: dict[str, str] = {}
        self._total = 0
        #: Ctrl-C left tests running on threads: nothing may be torn down under them
        self._abandoned = False
        #: per-thread capture kept for tests left running (``Isolation.keep_overrides``)
        self._kept_overrides = ExitStack()
        self._threads: ThreadRunner | None = None
        #: tests that failed on a thread, run again alone (``confirm``)
        self.confirmations = Confirmations(enabled=False)
        #: CPU and wall time of the concurrent parts: whether threads could bring anything
        self.cpu_share = CpuShare()
        #: how many tests run at once (``--par-thread-concurrency``)
        self.concurrency = Concurrency(options.n_jobs, options.thread_concurrency == "adaptive")
        self._properties: dict[int, list[tuple[str, object]]] = {}

    def pytest_report_header(self) -> str:
        return f"parproc: {self.options.n_jobs} threads in this process (backend threading)"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> bool | None:
        return protocol_on_test_thread(item)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Any:
        report = yield
        keep_report(report)
        confirmations = self.confirmations
        confirmations.annotate(report)
        if confirmations.enabled and call_failed(report) and in_test_thread():
            assert self._threads is not None
            self._threads.state.confirm_later(item)  # (before its teardown: see there)
        return report

    def _write_notes(self, writer: Any) -> None:
        verbose = self.config.get_verbosity() > 0
        for line in serial_lane.summary(self.alone, self._total, verbose):
            writer.write_line(line)
        for line in self.confirmations.summary(verbose):
            writer.write_line(line)
        busy = self.cpu_share.line(self.concurrency.one_at_a_time_s)
        if busy is not None:
            writer.write_line(busy)
        threads = self._threads
        if threads is not None and threads.left_running:
            passed = threads.limits_passed
            limit = next(iter(passed)) if len(passed) == 1 else "each its own"
            writer.write_line(summary_line(len(threads.left_running), limit))

    # -- the run ------------------------------------------------------------------------------
    def _serial_reason(self, session: pytest.Session) -> str | None:
        return compat.whole_run_reason(session.items)

    def _run(self, session: pytest.Session) -> None:
        items = session.items
        if not items:
            return
        with self.view.span("planning"):
            alone = serial_lane.reasons(self.config, items)
            self.alone = {items[index].nodeid: reason for index, reason in alone.items()}
            plan = serial_lane.segments(items, alone)
            locations_before_threads(items)
        self._total = len(items)
        self.timing = timing = RunTiming(time.time())
        if not any(segment.concurrent for segment in plan):
            self._lane_only(session, items, timing)
            return
        started = time.perf_counter()
        replayer = Replayer(self.config, items)
        pytest_internals.main_basetemp(self.config)  # created now, not raced for by threads

        def end_segment(number: int) -> list[BaseException]:
            # what the next segment gets other parameters of: torn down now, as serially
            return finish_other_parameters(plan[number + 1].parameters)

        order = [segment.concurrent + segment.alone for segment in plan]
        state = ConcurrentSetupState(items, order, end_segment)
        maxfail = int(self.config.getoption("maxfail") or 0)
        self.confirmations = Confirmations(enabled=not maxfail)
        # each test's user_properties before it ran (collection's), for a run again alone
        if self.confirmations.enabled:
            self._properties = {
                i: list(item.user_properties)
                for i, item in enumerate(items)
                if item.user_properties
            }
        threads = self._threads = ThreadRunner(self, state, self.options.timeout_s, maxfail)
        self.view.facts = RunFacts(
            "threading", self.options.n_jobs, "threads share one interpreter (and the GIL)"
        )
        self.view.start_progress(
            session, replayer.finished, self.options.n_jobs, lambda: (threads.running.copy(), 0, 0)
        )
        restore_setup_state = pytest_internals.replace_setup_state(session, state)
        with ExitStack() as restore:
            if compat.timeout.active(self.config):
                timers = PluginTimers(in_isolated_test)
                self.config.pluginmanager.register(timers)
                restore.callback(self.config.pluginmanager.unregister, timers)
            restore.callback(restore_setup_state)
            restore.callback(install_fixture_slots())
            restore.callback(pytest_internals.replace_current_test_var(update_current_test_var))
            restore.callback(pytest_internals.thread_local_assertion_hooks())
            try:
                for number, segment in enumerate(plan):
                    if self._stop_wanted(session):
                        break
                    try:
                        if segment.concurrent:
                            with self.cpu_share.measured():
                                self._concurrent(session, items, segment.concurrent, replayer)
                        if segment.alone:
                            self._serial_lane(session, [items[i] for i in segment.alone], timing)
                    finally:  # after the lane: a test of it may mend what a failed test met
                        self._confirm(session, items, timing, replayer)
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
                    self._tear_down(state.teardown_all)  # what a stopped run left set up
                if not any(thread.is_alive() for thread in threads.left_running.values()):
                    self._kept_overrides.close()  # else kept: such a thread may still go on
                timing.wall_s = time.perf_counter() - started
                timing.test_time_s += replayer.test_time_s

    def _lane_only(
        self, session: pytest.Session, items: Sequence[pytest.Item], timing: RunTiming
    ) -> None:
        """Every test runs alone: no thread runs a test, so nothing of pytest is replaced (the
        fixture slots, the set-up state, ``PYTEST_CURRENT_TEST``...): pytest's own protocol
        runs them in order, as its own loop would, with --par-timeout still applied."""
        started = time.perf_counter()
        self.view.facts = RunFacts("threading", 1, "every test ran alone (the serial lane)")
        try:
            with self.view.main_thread_tests():
                for position, item in enumerate(items):
                    if self._stop_wanted(session):
                        break
                    nextitem = items[position + 1] if position + 1 < len(items) else None
                    self._alone(item, timing, nextitem)
        finally:
            timing.wall_s = time.perf_counter() - started

    def _serial_lane(
        self, session: pytest.Session, lane: list[pytest.Item], timing: RunTiming
    ) -> None:
        """A segment's tests that run alone, one after another: the progress thread is ended
        once for all of them, not around each."""
        with self.view.main_thread_tests():
            for item in lane:
                if self._stop_wanted(session):
                    break
                self._alone(item, timing)

    def _confirm(
        self,
        session: pytest.Session,
        items: Sequence[pytest.Item],
        timing: RunTiming,
        replayer: Replayer,
    ) -> None:
        """The segment's tests that failed on a thread, each run again alone (``confirm``);
        those a stop leaves are reported from their thread's run."""
        taken = self.confirmations.take()
        if not taken:
            return
        threads = self._threads
        assert threads is not None
        try:
            with self.view.main_thread_tests():
                while taken and not self._abandoned and not self._stop_wanted(session):
                    index, text, _ = taken[0]
                    item = items[index]
                    del taken[0]
                    self.confirmations.started(text)
                    threads.state.rerunning(item)
                    thread_internals.forget_report_sections(item)
                    item.user_properties[:] = self._properties.get(index, [])
                    drop_repeated = thread_internals.suite_properties_kept_once(self.config)
                    try:
                        self._alone(item, timing)
                    finally:
                        drop_repeated()
                        threads.state.rerunning(None)
                        self.confirmations.ended(item.nodeid, self.stop_request is None)
        finally:
            for _, _, result in taken:  # (a stop, Ctrl-C: no failure is lost)
                self._report_thread_run(result, items[result.index], replayer)

    def _report_thread_run(
        self, result: ThreadResult, item: pytest.Item, replayer: Replayer
    ) -> None:
        """A held test's run on its thread, reported after all: it will not run again."""
        with self.view.span("replay"):
            replayer.replay_reports(result.index, result.reports)
        for message in result.warnings:
            replayer.warn_message(message, item.nodeid)
        threads = self._threads
        if threads is not None:
            self._tear_down(lambda: threads.state.unconfirm(item))

    def _alone(
        self, item: pytest.Item, timing: RunTiming, nextitem: pytest.Item | None = None
    ) -> None:
        """A test of the serial lane, in the main thread with no other test running (with
        ``nextitem`` where no thread runs at all: pytest's own set-up state)."""
        release_held(self.config)
        self.view.lane = SERIAL_LANE
        started = time.perf_counter()

        def overrun() -> str:
            return stopped_text(item.nodeid, self.limit_text(), self.alone.get(item.nodeid))

        # pytest-timeout's own timer keeps its limit here, in the main thread
        limit_s = None if compat.timeout.item_limit(item) else self.options.timeout_s
        with running(item), main_thread_limit(limit_s, overrun):
            try:
                if self._threads is None:  # (the hook pytest's own loop calls)
                    hook = item.config.hook
                    self.stop_request = run_test(hook, item, nextitem, "in the main thread")
                else:
                    self.stop_request = self._threads.protocol(item, "in the main thread")
            except pytest.fail.Exception as error:  # the limit, outside the test's own phases
                self.finish_errors.append(("main", f"{item.nodeid}: {error}"))
                if self._threads is None:  # what the cut protocol left set up
                    self._tear_down(
                        lambda: pytest_internals.teardown_towards(item.session, nextitem)
                    )
        busy_s = time.perf_counter() - started
        timing.add_test("main", os.getpid(), busy_s)
        timing.test_time_s += busy_s

    def _tear_down(self, action: Callable[[], list[BaseException] | None]) -> None:
        """A teardown in the main thread, bounded by --par-timeout; its errors go to the
        summary."""

        def overrun() -> str:
            return stopped_text("tearing down", self.limit_text(), None)

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
        threads = self._threads
        assert threads is not None
        n_threads = min(self.options.n_jobs, len(indices))
        with isolation(self.config, items, indices) as isolated:
            threads.isolated = isolated
            filters, unowned = isolated.filters, isolated.unowned
            parallel = Parallel(
                n_jobs=n_threads,
                backend="threading",
                batch_size=1,
                pre_dispatch="n_jobs",
                return_as="generator_unordered",
            )

            run_turn = delayed(threads.run_turn)
            admission = threads.admission = Admission(self.concurrency, len(indices))

            def tasks() -> Iterator[Any]:
                while admission.has_more() and not self.stopping:
                    yield run_turn(items, indices, filters, n_threads)

            gate = InterruptGate()
            try:
                with gate.installed():
                    for turn in self.view.waiting(parallel(tasks())):
                        for result in turn.results:
                            with gate:
                                self._replay(result, items[result.index], replayer)
                            if self._stop_wanted(session):
                                self.stopping = True
                        if turn.error is not None:
                            raise turn.error
            except KeyboardInterrupt:
                # Tests running on threads cannot be interrupted: pytest reports the
                # interruption now, and they are left to the end of the process.
                self._abandoned = self.stopping = True
                raise
            except BaseException:
                self.stopping = True  # no new test starts; those running finish first
                raise
            finally:
                admission.close()
                if not self._abandoned:
                    threads.wait_idle()
            for message in unowned:
                replayer.warn_message(message, "")
        if isolated.kept is not None:
            self._kept_overrides.callback(isolated.kept.close)
        if not self._abandoned:
            threads.join_pool_threads()

    def _replay(self, result: ThreadResult, item: pytest.Item, replayer: Replayer) -> None:
        if result.skipped:
            return
        assert self.timing is not None
        self.timing.add_test(result.worker_id, os.getpid(), result.busy_s)
        if not result.on_main_thread:  # (else counted in the main thread's own time)
            self.cpu_share.add(result.cpu_s, 0.0)
        view = self.view
        view.lane = result.worker_id
        threads = self._threads
        # (``item.nodeid`` is built on each access: asked only where a test was left running)
        left = bool(threads and threads.left_running and item.nodeid in threads.left_running)
        if not left and result.stop is None and self.confirmations.hold(result):
            return  # reported from its run alone, warnings and all
        with view.span("replay"):
            replayer.replay_reports(result.index, result.reports)
        if threads is not None and threads.state.confirming(item):  # (marked, not held)
            self._tear_down(lambda: threads.state.unconfirm(item))
        if left:
            text = f"{item.nodeid} ran past its time limit and was left running on its thread"
            view.mark(result.worker_id, "timeout", item.nodeid, text)
        for message in result.warnings:
            replayer.warn_message(message, item.nodeid)
        if result.stop is not None and self.stop_request is None:
            self.stop_request = result.stop
