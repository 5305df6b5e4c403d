"""The main process's side of a run: plan, drive the engine, replay, stop, survive crashes.

A run is one or more rounds. A round is one ``Parallel`` call: the planned units, then one
end-of-round task per worker (each worker ends its session there and reports its last test).
Tests left over by a crash (those its worker had not started, or held for later) run in the
next round, on fresh sessions.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

from ...parallel import Parallel, WorkerCrashedError, delayed, parallel_config
from .. import pytest_internals
from ..messages import RunSpec, StopRequest, TaskResult, Unit
from ..options import ParprocOptions, start_limit
from ..replay import Replayer
from ..signals import sigterm_as_interrupt
from ..timing import RunTiming
from . import durations, inherit
from .crashes import (
    CrashReport,
    describe_crash,
    describe_timeout,
    kill_process_group,
    recover_log,
    timed_out,
)
from .planning import planned_items
from .rundir import RunDirectory
from .scheduling import plan_units
from .worker import end_round, run_unit


class ProcessController:
    """Registered in the main process when the plugin is active; owns the test loop."""

    def __init__(self, config: pytest.Config, options: ParprocOptions) -> None:
        self.config = config
        self.options = options
        self.timing: RunTiming | None = None
        self.crashes: list[CrashReport] = []
        self.finish_errors: list[tuple[str, str]] = []
        self.session_errors: list[tuple[str, str]] = []
        self.crash_notes: list[str] = []
        self.stop_request: StopRequest | None = None
        self.stopping = False
        #: whether the backend loses only a dead worker's task (loky) or the whole call
        self.isolates = parallel_backend_isolates(options.backend)
        self._configured_at = time.perf_counter()  # start-up and collection are timed from here
        #: recorded test durations by node id (pytest's cache), for planning
        self.durations: dict[str, float] = {}
        #: the units of the current round not handed out yet
        self._queue: deque[Unit] = deque()
        #: workers that have sent a result (so have built their session)
        self._heard_from: set[str] = set()

    # -- pytest hooks -----------------------------------------------------------------------
    def pytest_report_header(self) -> str:
        return f"parproc: {self.options.n_jobs} workers, backend {self.options.backend}"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        # The checks of pytest's own pytest_runtestloop, which this one replaces.
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            count = session.testsfailed
            raise session.Interrupted(f"{count} error{'s' if count != 1 else ''} during collection")
        if session.config.option.collectonly:
            return True
        with sigterm_as_interrupt():
            self._run(session)
        if self.stop_request is not None:
            if self.stop_request.kind == "exit":
                pytest.exit(self.stop_request.message, self.stop_request.returncode)
            raise KeyboardInterrupt(self.stop_request.message)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
        return True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        writer = terminalreporter
        for worker_id, text in self.session_errors[:1]:  # the others' are the same, or alike
            others = len(self.session_errors) - 1
            more = f" (and {others} other worker{'s' if others > 1 else ''})" if others else ""
            writer.write_sep("-", f"parproc: worker {worker_id}{more} could not build its session")
            writer.write_line(
                "It fails in the worker, not in the main process (a conftest or plugin that "
                "depends on the process it runs in?):"
            )
            writer.write_line(text.rstrip())
        for worker_id, text in self.finish_errors:
            writer.write_sep("-", f"parproc: error while worker {worker_id} ended its session")
            writer.write_line(text.rstrip())
        for text in self.crash_notes:
            writer.write_sep("-", "parproc: a worker died outside of any test", red=True)
            writer.write_line(text.rstrip())
        crashes = self._crash_count
        if crashes > self.options.max_worker_restart:
            writer.write_line(
                f"parproc: {crashes} worker crashes, more than the "
                f"{self.options.max_worker_restart} replacements allowed "
                "(--par-max-worker-restart): no new test was started after that",
                red=True,
            )
        if self.timing is None or not self.timing.workers:
            return
        verbosity = self.config.get_verbosity()
        if verbosity < -1:
            return
        lines = self.timing.lines(verbosity, self.options.backend)
        if verbosity >= 0:
            writer.write_sep("=", f"parproc: {len(self.timing.workers)} workers", bold=True)
        for line in lines:
            writer.write_line(line)

    # -- the run ------------------------------------------------------------------------------
    def _run(self, session: pytest.Session) -> None:
        items = session.items
        if not items:
            return
        self.timing = RunTiming(time.time())
        started = time.perf_counter()
        replayer = Replayer(self.config, items)
        run_dir = tempfile.mkdtemp(prefix="pytest-parproc-")
        self.durations = durations.load(self.config)
        planned = planned_items(items, list(range(len(items))), self.options.dist)
        first_plan = plan_units(planned, self.options.n_jobs, self.options.dist, self.durations)
        spec = self._spec(run_dir, len(first_plan))
        blocker = "--par-start=collect" if self.options.start != "fork" else None
        blocker = blocker or inherit.fork_blocker(self.config)
        self.timing.fork_blocker = blocker
        if blocker is None:
            inherit.offer(spec.run_id, session)
        try:
            self._rounds(session, spec, replayer, first_plan)
        finally:
            inherit.withdraw()
            measured = replayer.durations
            finished = replayer.finished
            durations.save(
                self.config, {items[i].nodeid: measured[i] for i in finished if i in measured}
            )
            self.timing.wall_s = time.perf_counter() - started
            self.timing.test_time_s = replayer.test_time_s
            shutil.rmtree(run_dir, ignore_errors=True)

    def _spec(self, run_dir: str, n_units: int) -> RunSpec:
        invocation = self.config.invocation_params
        return RunSpec(
            run_id=uuid.uuid4().hex,
            run_dir=run_dir,
            args=tuple(invocation.args),
            invocation_dir=str(invocation.dir),
            # No more workers than units of work: each costs a process and a collection.
            n_workers=max(2, min(self.options.n_jobs, n_units)),
            basetemp=_optional_str(pytest_internals.main_basetemp(self.config)),
            environment=tuple(os.environ.items()),
            timeout_s=self.options.timeout_s,
            start_limit_s=self._start_limit[0],
            max_tests_per_worker=self.options.max_tests_per_worker,
            max_worker_memory=self.options.max_worker_memory,
        )

    def _rounds(
        self, session: pytest.Session, spec: RunSpec, replayer: Replayer, first_plan: list[Unit]
    ) -> None:
        items = replayer.items
        remaining = list(range(len(items)))
        n_jobs = spec.n_workers
        round_number = 0
        unfinished: set[str] = set()
        while (remaining and not self.stopping) or unfinished:
            crashes_before = len(self.crashes)
            units: list[Unit] = []
            if round_number == 0:
                units = first_plan
            elif remaining and not self.stopping:
                planned = planned_items(items, remaining, self.options.dist)
                units = plan_units(planned, spec.n_workers, self.options.dist, self.durations)
            if units:
                n_jobs = max(2, min(spec.n_workers, len(units)))
            # A round without units only ends the sessions a crash left unfinished.
            closing = not units
            unfinished = self._round(session, spec, replayer, units, round_number, n_jobs)
            round_number += 1
            if closing:
                break
            left = [index for index in remaining if index not in replayer.finished]
            if session.shouldstop and self.session_errors:
                break  # workers that cannot build a session: do not try again
            if len(left) == len(remaining) and len(self.crashes) == crashes_before:
                session.shouldfail = "pytest-parproc: the workers ran none of the tests left"
                break
            remaining = left

    def _round(
        self,
        session: pytest.Session,
        spec: RunSpec,
        replayer: Replayer,
        units: list[Unit],
        round_number: int,
        n_jobs: int,
    ) -> set[str]:
        """One Parallel call: the units, then an end-of-round task per worker. Returns the
        workers whose session did not end (a crash let another worker take their task)."""
        queue = self._queue = deque(units)
        run_dir = RunDirectory(spec.run_dir)
        params: dict[str, Any] = {}
        if self.options.backend == "loky":
            # Fresh workers for each run: a worker that ran another run's tests has their
            # modules imported (its settings differ, so the engine starts a new pool). Idle
            # workers leave soon after the run; during it, there is always a task to take.
            params = {"env": {"PYTEST_PARPROC_RUN_ID": spec.run_id}, "idle_worker_timeout": 10}
            if self.timing is not None and self.timing.fork_blocker is None:
                params["start_method"] = "fork"  # forks only where safe, else fork+exec
        isolates = self.isolates
        with parallel_config(backend=self.options.backend, **params):
            parallel = Parallel(
                n_jobs=n_jobs,
                return_as="generator_unordered",
                batch_size=1,
                crash_policy="isolate" if isolates else "abort",
            )
            n_workers = parallel.n_jobs

            def tasks() -> Iterator[Any]:
                while queue and not self.stopping:
                    yield delayed(run_unit)(spec, round_number, queue.popleft())
                for _ in range(n_workers):
                    yield delayed(end_round)(spec, round_number, n_workers)

            outputs = parallel(tasks())
        ran: set[str] = set()
        ended: set[str] = set()
        crashed: set[str] = set()
        try:
            for output in outputs:
                if isinstance(output, WorkerCrashedError):
                    crashed.add(self._crashed(session, output, run_dir, replayer, aborted=False))
                elif isinstance(output, TaskResult):
                    (ended if output.finished else ran).add(output.worker_id)
                    self._handle(session, output, replayer, run_dir)
                else:
                    raise TypeError(f"unexpected result from a worker: {output!r}")
        except WorkerCrashedError as error:
            # The backend cannot tell which task a dead worker ran: it stopped the whole call,
            # and every worker with it.
            self._crashed(session, error, run_dir, replayer, aborted=True)
            return set()
        finally:
            outputs.close()
        if run_dir.stop_requested() and not self.stopping:
            # A safety net: every stop a worker asks for should have reached us by now.
            session.shouldstop = session.shouldstop or "pytest-parproc: a worker stopped the run"
            self._check_stop(session, run_dir)
        return ran - ended - crashed if isolates else set()

    def _handle(
        self, session: pytest.Session, result: TaskResult, replayer: Replayer, run_dir: RunDirectory
    ) -> None:
        assert self.timing is not None
        self.timing.add(result)
        self._heard_from.add(result.worker_id)
        for record in result.records:
            replayer.replay(record)
        for index in result.missing:
            nodeid = replayer.items[index].nodeid
            replayer.fail(
                index,
                "setup",
                f"pytest-parproc: worker {result.worker_id} did not collect {nodeid}. Every "
                "process must collect the same test ids: are parameter ids built from "
                "something that differs between processes (random values, object addresses)?",
            )
        if result.returned and not self.stopping:
            # A worker that retired (--par-max-*) handed these back: they go first to the
            # next free worker, or to the next round if this one has no task left to hand out.
            items = replayer.items
            keys = tuple(pytest_internals.parametrization_key(items[i]) for i in result.returned)
            self._queue.appendleft(Unit(tuple((i, items[i].nodeid) for i in result.returned), keys))
        if result.session_error:
            self.session_errors.append((result.worker_id, result.session_error))
            # Like a collection error: the run stops (exit code 2), the error is shown once.
            session.shouldstop = session.shouldstop or (
                f"pytest-parproc: worker {result.worker_id} could not build its pytest session"
            )
        if result.finish_error:
            self.finish_errors.append((result.worker_id, result.finish_error))
        if result.stop is not None and self.stop_request is None:
            self.stop_request = result.stop
        if result.shouldstop and not session.shouldstop:
            session.shouldstop = result.shouldstop  # set by a test or a plugin in the worker
        self._check_stop(session, run_dir)

    @property
    def _crash_count(self) -> int:
        """Crashes counted against --par-max-worker-restart (timeouts are the test's failure)."""
        return sum(not crash.timed_out for crash in self.crashes)

    def _limit(self) -> str:
        """The time limit, and where it was set: ``option --par-timeout = 2 s``."""
        source = self.options.sources.get("timeout", "--par-timeout")
        return f"{source} = {self.options.timeout_s:g} s"

    @functools.cached_property
    def _start_limit(self) -> tuple[float, str]:
        """How long a worker may take to build its session, and why (fixed when the run
        starts, from this process's own start-up and collection)."""
        return start_limit(self.options, time.perf_counter() - self._configured_at)

    def _check_stop(self, session: pytest.Session, run_dir: RunDirectory) -> None:
        wanted = self.stop_request is not None or session.shouldfail or session.shouldstop
        if wanted and not self.stopping:
            self.stopping = True
            run_dir.request_stop()

    def _crashed(
        self,
        session: pytest.Session,
        error: WorkerCrashedError,
        run_dir: RunDirectory,
        replayer: Replayer,
        aborted: bool,
    ) -> str:
        """Account for a dead worker; returns its id ("" if it died before taking one)."""
        worker_ids = run_dir.worker_ids_by_pid()
        crashed_id = worker_ids.get(error.pid or -1, "")
        # What the dead worker's tests started dies with it (after an abort, every worker's).
        for pid in set(worker_ids) if aborted else {error.pid}:
            kill_process_group(pid)
        victim = None
        # After an abort every worker was stopped: keep what each one finished.
        for worker_id in sorted(set(worker_ids.values()) if aborted else {crashed_id} - {""}):
            blamed = recover_log(run_dir, worker_id, replayer, blame=worker_id == crashed_id)
            victim = blamed if worker_id == crashed_id else victim
        stopped = victim is not None and timed_out(run_dir, crashed_id)
        if victim is not None:
            index, when = victim
            nodeid = replayer.items[index].nodeid
            if stopped:
                text = describe_timeout(
                    error, crashed_id, f"{nodeid} ({when})", self._limit(), run_dir
                )
            else:
                text = describe_crash(
                    error, crashed_id, f"while running {nodeid} ({when})", run_dir
                )
                text += " The other tests go on in a replacement worker."
            replayer.fail(index, when, text)
        else:
            # Dead outside any test (building its session, importing a conftest, ending its
            # session): retrying would most likely die the same way.
            doing = "while it was not running a test (starting, collecting or ending its session)"
            building = crashed_id not in self._heard_from  # no result yet: still collecting
            if building:
                doing = "while building its session (configuring, importing, collecting)"
            if timed_out(run_dir, crashed_id):
                limit_s, why = self._start_limit
                doing = f"building its session, past the time limit ({limit_s:.3g} s: {why})"
            self.crash_notes.append(describe_crash(error, crashed_id, doing, run_dir))
            reason = "pytest-parproc: a worker died outside of any test"
            if building:  # like a collection error: exit code 2
                session.shouldstop = session.shouldstop or reason
            else:
                session.shouldfail = reason
        self.crashes.append(CrashReport(crashed_id, error.pid, error.exitcode, stopped))
        crashes = self._crash_count
        if crashes > self.options.max_worker_restart:
            session.shouldfail = (
                f"pytest-parproc: {crashes} worker crashes "
                f"(--par-max-worker-restart={self.options.max_worker_restart})"
            )
        self._check_stop(session, run_dir)
        return crashed_id


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def parallel_backend_isolates(name: str) -> bool:
    """Whether the backend can lose one task to a dead worker and go on with the others."""
    return bool(Parallel(n_jobs=2, backend=name).backend.isolates_crashes)
