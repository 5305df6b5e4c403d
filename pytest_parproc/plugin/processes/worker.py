"""What runs inside a process worker: one pytest session per worker, units of tests, reports.

The engine calls ``run_unit`` and ``end_round`` as ordinary tasks. The worker's session lives
in this module between tasks, so session, package and module fixtures stay set up while the
worker still has tests that need them. Each test runs through ``pytest_runtest_protocol`` with
its true ``nextitem``: the last test of a unit is kept and run first in the worker's next task,
when its successor is known (pytest-xdist keeps one test back for the same reason).
"""

from __future__ import annotations

import faulthandler
import os
import time
import traceback

import pytest

from ... import workerinfo
from ...parallel.nesting import as_in_tests
from .. import compat, pytest_internals
from ..compat import coverage, freezegun, xdist
from ..messages import (
    ParamKey,
    RunSpec,
    StopRequest,
    TaskResult,
    Unit,
)
from ..shared import worker as shared
from ..stopping import run_test, stop_wanted
from . import dask_rundir, inherit, worker_process
from .collector import ReportCollector
from .dask_cluster import check_files, dask_address, where
from .interrupts import interruptible
from .rundir import ProgressLog, RunningSlot
from .session import adopt_session, build_session

_session: WorkerSession | None = None
_identity: tuple[str, str] | None = None  # (run id, worker id) of this process


def run_unit(spec: RunSpec, round_number: int, unit: Unit) -> TaskResult:
    """Engine task: run a unit's tests in this worker's session (built on first use)."""
    global _session
    stale = _end_stale_session(spec, round_number)
    if _session is None:
        worker_id = ""
        try:
            worker_id = _worker_id(spec)
            _session = WorkerSession(spec, worker_id, round_number, inherit.take(spec.run_id))
        except Exception:
            # Reported, not raised: the error may not even unpickle in the main process
            # (ConftestImportFailure does not), and every retry would fail the same way.
            failed = TaskResult(worker_id=worker_id or where(), pid=os.getpid())
            failed.session_error = traceback.format_exc()
            return failed
    with as_in_tests():  # a test's own Parallel calls behave as in a serial run
        result = _session.run_unit(unit)
    if result.finished:
        _session = None  # it retired (see WorkerSession._retire)
    result.finish_error = result.finish_error or stale
    return result


def end_round(spec: RunSpec, round_number: int, n_workers: int) -> TaskResult:
    """Engine task: finish this worker's session, then wait until every worker of the pool has
    an end-of-round task (so no worker takes two and none is left out)."""
    global _session
    run_dir = dask_rundir.for_worker(spec)
    round_id = str(round_number)
    run_dir.arrive(round_id)
    stale = _end_stale_session(spec, round_number)
    session, _session = _session, None
    if session is not None:
        with as_in_tests():
            result = session.finish()
    else:
        result = TaskResult(worker_id=_worker_id(spec), pid=os.getpid(), finished=True)
        result.finish_error = stale
    run_dir.wait_for_all(round_id, n_workers)
    return result


def _end_stale_session(spec: RunSpec, round_number: int) -> str | None:
    """A session left from an earlier round (this worker got no end-of-round task: another
    worker died in its own and the barrier let a replacement through) is ended now, without its
    held test: the main process saw that test unfinished and runs it in a later round."""
    global _session
    session = _session
    if session is None or (session.spec.run_id, session.round) == (spec.run_id, round_number):
        return None
    _session = None
    if session.spec.run_id != spec.run_id:
        return None  # another run's session: its main process is gone
    session.held = None
    return session.finish().finish_error


def _worker_id(spec: RunSpec) -> str:
    global _identity
    if _identity is None or _identity[0] != spec.run_id:
        if spec.files:
            check_files(spec.rootdir, spec.files)
        if spec.dask:
            freezegun.real_clock_for_dask_worker()
        os.environ.clear()
        os.environ.update(spec.environment)
        _identity = (spec.run_id, dask_rundir.for_worker(spec).claim_worker_id())
        workerinfo.enter_worker(_identity[1], spec.n_workers)
        xdist.set_environment(_identity[1], spec.n_workers, spec.run_id)
    return _identity[1]


class WorkerSession:
    """A pytest session built in this worker from the main process's arguments."""

    def __init__(
        self,
        spec: RunSpec,
        worker_id: str,
        round_number: int,
        inherited: pytest.Session | None = None,
    ) -> None:
        """``inherited``: the main process's collected session, in a worker forked from it
        (see ``inherit``); otherwise the worker builds and collects a session of its own."""
        started = time.perf_counter()
        self.spec = spec
        self.round = round_number
        self.worker_id = worker_id
        self.run_dir = dask_rundir.for_worker(spec)
        log = ProgressLog(self.run_dir.log_path(worker_id))
        running = RunningSlot(self.run_dir.running_path(worker_id)) if spec.live else None
        self.collector = ReportCollector(log, self.run_dir, running)
        self.stop: StopRequest | None = None
        self.held: tuple[int, pytest.Item] | None = None
        self.inherited = inherited is not None
        self.address = dask_address()
        os.chdir(spec.invocation_dir)
        worker_process.lead_process_group()
        worker_process.may_start_processes()
        self._devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the session
        # A fatal signal's traceback, or the stacks at --par-timeout, go to a file the main
        # process reads when this worker dies, whatever the backend does with its stderr.
        self._fault_file = open(self.run_dir.fault_path(worker_id), "w")  # noqa: SIM115
        start_limit_s = spec.start_limit_s
        if start_limit_s is not None:
            # Building the session is bounded (--par-start-timeout): a conftest or an import
            # that hangs ends the worker, which the main process reports as a death outside
            # tests.
            faulthandler.dump_traceback_later(start_limit_s, exit=True, file=self._fault_file)
        try:
            basetemp = self._basetemp()
            if inherited is None:
                self.session = build_session(
                    spec, worker_id, self.collector, self._devnull, basetemp
                )
            else:
                self.session = adopt_session(
                    inherited, spec, worker_id, self.collector, self._devnull, basetemp
                )
            self.config = self.session.config
        finally:
            if start_limit_s is not None:
                faulthandler.cancel_dump_traceback_later()
        shared.attach(self.session, self.inherited, self.run_dir.shared_values)
        worker_process.quiet_terminal(self.config)
        # pytest's faulthandler plugin pointed it at stderr while configuring: point it back.
        faulthandler.enable(file=self._fault_file, all_threads=True)
        self._items_by_key: dict[ParamKey, pytest.Item] | None = None
        self.items: dict[str, pytest.Item] = {}
        if not self.inherited:
            for item in self.session.items:
                self.items.setdefault(item.nodeid, item)
        self.maxfail = int(self.config.getoption("maxfail", 0) or 0)
        self.tests_run = 0
        self.startup_s = time.perf_counter() - started
        self.ready_at = time.time()
        self._startup_reported = False
        self.config.hook.pytest_parproc_worker_started(config=self.config, worker_id=worker_id)

    def _basetemp(self) -> str | None:
        if self.spec.basetemp is None:
            return None
        # pytest empties a given basetemp: a session of a later round gets its own folder,
        # so the tmp_path folders of the worker's earlier tests stay for inspection.
        name = self.worker_id if self.round == 0 else f"{self.worker_id}-{self.round}"
        if self.spec.dask:
            # (the main process's folder, made on this worker's machine where it is not there)
            os.makedirs(self.spec.basetemp, exist_ok=True)
        return os.path.join(self.spec.basetemp, name)

    def _by_key(self) -> dict[ParamKey, pytest.Item]:
        if self._items_by_key is None:
            self._items_by_key = {}
            for item in self.session.items:
                key = pytest_internals.parametrization_key(item)
                if key is not None:
                    self._items_by_key.setdefault(key, item)
        return self._items_by_key

    def _result(self) -> TaskResult:
        result = TaskResult(worker_id=self.worker_id, pid=os.getpid(), address=self.address)
        if not self._startup_reported:
            self._startup_reported = True
            result.startup_s = self.startup_s
            result.ready_at = self.ready_at
            result.process_started_at = worker_process.process_started_at()
            result.inherited = self.inherited
        return result

    def stopping(self) -> bool:
        """Whether a new test may not start: for a reason of this worker's, or of another's."""
        return self._stop_reason_here() or self.run_dir.stop_requested()

    def _stop_reason_here(self) -> bool:
        failures = self.run_dir.failure_count() if self.maxfail else 0
        return stop_wanted(self.session, self.stop, failures, self.maxfail)

    def run_unit(self, unit: Unit) -> TaskResult:
        started = time.perf_counter()
        result = self._result()
        todo: list[tuple[int, pytest.Item]] = []
        if self.held is not None:
            todo.append(self.held)
            self.held = None
        keys = unit.keys or (None,) * len(unit.items)
        for (index, nodeid), key in zip(unit.items, keys, strict=True):
            if self.inherited:
                todo.append((index, self.session.items[index]))  # the main process's own list
                continue
            item = self.items.get(nodeid)
            if item is None and key is not None:
                item = self._by_key().get(key)  # an id built from a value of the moment
            if item is None:
                result.missing.append(index)
            else:
                todo.append((index, item))
        for position, (index, item) in enumerate(todo):
            if self.stopping():
                break
            if position == len(todo) - 1:
                self.held = (index, item)
                result.held = index
                break
            # The last test before --par-max-tasks-per-worker tears everything down itself.
            limit = self.spec.max_tasks_per_worker
            last = limit is not None and self.tests_run + 1 >= limit
            self._run(index, item, None if last else todo[position + 1][1], result)
            self.tests_run += 1
            why = worker_process.retire_reason(self.spec, self.tests_run)
            if why:
                result.returned = [index for index, _ in todo[position + 1 :]]
                self._retire(result, why)
                break
        result.busy_s = time.perf_counter() - started
        return result

    def _retire(self, result: TaskResult, why: str) -> None:
        """End the session now, without the tests left (the main process hands them to other
        workers), and have this process replaced once the task is done."""
        from ...parallel import retire_worker

        try:
            self._end_session(result)
        finally:
            self._close()
        result.finished = True
        retire_worker(f"pytest-parproc worker {self.worker_id}: {why}")

    def _run(
        self, index: int, item: pytest.Item, nextitem: pytest.Item | None, result: TaskResult
    ) -> None:
        record = self.collector.begin(index)
        complete = False
        timeout_s = self.spec.timeout_s
        if timeout_s is not None:
            # faulthandler's own thread needs no GIL: a test stuck in C code is caught too. It
            # writes every thread's stack to the fault file and leaves with _exit(1); the main
            # process finds "Timeout" there and reports the test.
            deadline = time.monotonic() + timeout_s

            def rearm() -> None:
                left_s = max(0.05, deadline - time.monotonic())
                faulthandler.dump_traceback_later(left_s, exit=True, file=self._fault_file)

            rearm()
            self.collector.rearm = rearm
        try:
            with interruptible(self.spec.run_id):
                stop = run_test(self.config.hook, item, nextitem, f"on worker {self.worker_id}")
            complete = stop is None
            self.stop = stop or self.stop
        finally:
            if timeout_s is not None:
                self.collector.rearm = None
                faulthandler.cancel_dump_traceback_later()
            self.collector.end(complete)
        result.records.append(record)
        if self.stop is not None:
            result.stop = self.stop
        if self.session.shouldstop:
            result.shouldstop = str(self.session.shouldstop)
        if self._stop_reason_here():
            # Tell the other workers at once, not only once the main process hears of it.
            self.run_dir.request_stop()

    def finish(self) -> TaskResult:
        """Run the kept test (now known to be this worker's last), end the session."""
        started = time.perf_counter()
        result = self._result()
        held, self.held = self.held, None
        if held is not None and not self.stopping():
            self._run(held[0], held[1], None, result)
        try:
            self._end_session(result)
        finally:
            self._close()
        result.finished = True
        result.busy_s = time.perf_counter() - started
        return result

    def _close(self) -> None:
        self.collector.log.close()
        self._fault_file.close()
        self._devnull.close()

    def _end_session(self, result: TaskResult) -> None:
        if self.inherited:
            # The session finish hooks are the main process's (report files, the cache): a
            # forked worker tears down what its tests left set up, and finishes what other
            # plugins keep per worker (syrupy's snapshots).
            try:
                pytest_internals.teardown_all(self.session)
            except BaseException:
                result.finish_error = traceback.format_exc()
            try:
                compat.finish_in_forked_worker(self.config)
            except BaseException:
                result.finish_error = (result.finish_error or "") + traceback.format_exc()
            self._finish_measuring(result)
            self._send_output(result)
            return
        try:
            failed = self.session.testsfailed
            status = pytest.ExitCode.TESTS_FAILED if failed else pytest.ExitCode.OK
            self.config.hook.pytest_sessionfinish(session=self.session, exitstatus=status)
        except BaseException:
            result.finish_error = traceback.format_exc()
        finally:
            self._finish_measuring(result)
            self._send_output(result)
            try:
                pytest_internals.unconfigure(self.config)
            except BaseException:
                result.finish_error = (result.finish_error or "") + traceback.format_exc()

    def _send_output(self, result: TaskResult) -> None:
        output = getattr(self.config, "workeroutput", None)
        if output is not None:
            try:
                self.config.hook.pytest_parproc_worker_finishing(
                    config=self.config, worker_id=self.worker_id, output=output
                )
            except BaseException:
                result.finish_error = (result.finish_error or "") + traceback.format_exc()
        if output:
            result.worker_output = dict(output)

    def _finish_measuring(self, result: TaskResult) -> None:
        """Save what the worker measured (pytest-cov), after its last teardown."""
        try:
            coverage.finish_in_worker(self.config)
        except BaseException:
            result.finish_error = (result.finish_error or "") + traceback.format_exc()
