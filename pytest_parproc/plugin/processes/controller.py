"""The main process's side of a process run: plan, drive the rounds, replay, stop, survive
crashes. The package docstring tells how a run goes."""

from __future__ import annotations

import functools
import gc
import os
import tempfile
import time
from typing import Any

import cloudpickle
import pytest

from ...parallel import WorkerCrashedError
from .. import compat, pytest_internals
from ..messages import RunSpec, StopRequest, TaskResult, Unit
from ..options import ParprocOptions
from ..replay import Replayer, release_held
from ..report.events import SERIAL_LANE
from ..report.timeline import RunFacts
from ..run import RunController
from ..signals import graceful_interrupts
from ..stopping import run_test
from ..timing import RunTiming
from . import dask_rundir, durations, inherit
from .crashes import (
    CrashReport,
    fault_text,
    kill_process_group,
    parallel_backend_isolates,
    recover_log,
)
from .dask_cluster import DaskCluster, EarlyStart
from .planning import planned_items
from .rounds import Round
from .rundir import RunDirectory
from .scheduling import plan_units
from .spec import run_spec
from .summary import write_crash_notes, write_session_errors
from .verdict import Death, Victim, crashed_count, judge, over_budget, start_limit

#: how long the workers may take to tear their fixtures down after the first Ctrl-C
INTERRUPT_GRACE_S = 30.0


class ProcessController(RunController):
    """The controller for process backends (loky, multiprocessing, registered ones)."""

    run_dir: RunDirectory  # the run's (``_run``)

    def __init__(self, config: pytest.Config, options: ParprocOptions) -> None:
        super().__init__(config, options)
        self.crashes: list[CrashReport] = []
        #: (worker id, traceback) of workers that could not build their session
        self.session_errors: list[tuple[str, str]] = []
        #: deaths outside any test, for the summary
        self.crash_notes: list[str] = []
        #: whether the backend loses only a dead worker's task (loky) or the whole call
        self.isolates = options.backend == "dask" or parallel_backend_isolates(options.backend)
        #: the run's dask cluster (--par-backend=dask), while the run lasts; started early
        self.cluster: DaskCluster | None = None
        self._early = EarlyStart.register(config, options)
        self._configured_at = time.perf_counter()  # start-up and collection are timed from here
        #: recorded test durations by node id (pytest's cache), for planning
        self.durations: dict[str, float] = {}
        self._round: Round | None = None
        #: what other plugins do differently after a crash (compat), for the summary
        self.compat_notes: list[str] = []

    def pytest_report_header(self) -> str:
        return f"parproc: {self.options.n_jobs} workers, backend {self.options.backend}"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        compat.clean_up(self.config)

    def _write_notes(self, writer: Any) -> None:
        for line in self.compat_notes:
            writer.write_line(line)

    # -- the summary --------------------------------------------------------------------------
    def _write_errors(self, writer: Any) -> None:
        write_session_errors(writer, self.session_errors)
        super()._write_errors(writer)
        write_crash_notes(writer, self.crash_notes)
        crashes = crashed_count(self.crashes)
        if crashes > self.options.max_worker_restart:
            writer.write_line(
                f"parproc: {crashes} worker crashes, more than the "
                f"{self.options.max_worker_restart} replacements allowed "
                "(--par-max-worker-restart): no new test was started after that",
                red=True,
            )

    # -- the run ------------------------------------------------------------------------------
    def _run(self, session: pytest.Session) -> None:
        items = session.items
        if not items:
            return
        self.timing = RunTiming(time.time())
        started = time.perf_counter()
        # The collected tests and everything imported leave the garbage collector's care: this
        # process runs no test while workers do, and each of the collector's passes over them
        # (while planning and replaying allocate) would cost more than the planning itself.
        gc.freeze()
        view = self.view
        replayer = Replayer(self.config, items)
        run_dir = tempfile.mkdtemp(prefix="pytest-parproc-")
        with view.span("planning"):
            self.durations = durations.load(self.config)
            alone = [i for i, item in enumerate(items) if compat.runs_alone(self.config, item)]
            spread = sorted(set(range(len(items))) - set(alone))
            planned = planned_items(items, spread, self.options.dist)
            first_plan = plan_units(planned, self.options.n_jobs, self.options.dist, self.durations)
        blocker = "--par-start=collect" if self.options.start != "fork" else None
        if self.options.backend == "dask":
            blocker = "dask workers are processes of their own"
        blocker = blocker or inherit.fork_blocker(self.config)
        self.timing.fork_blocker = blocker
        if self._early is not None and spread:
            self.cluster = self._early.take(self._start_limit[0])
        fork, start_limit_s = blocker is None, self._start_limit[0]
        spec = run_spec(
            self.config,
            self.options,
            self.cluster,
            run_dir,
            len(first_plan),
            fork,
            items,
            start_limit_s,
            self.view.live,
        )
        self.run_dir = dask_rundir.for_main(spec, self.cluster)
        view.facts = RunFacts(self.options.backend, spec.n_workers)
        told = self.run_dir.workers_now
        view.start_progress(session, replayer.finished, spec.n_workers, told, self.durations)
        if self.shared.values:  # (for workers that are not forks of this process)
            self.run_dir.publish_shared(cloudpickle.dumps(self.shared.portable()))
        if blocker is None and spread:
            inherit.offer(spec.run_id, session)
        alone_s = 0.0
        try:
            if spread:
                with graceful_interrupts(self._interrupted, INTERRUPT_GRACE_S):
                    self._rounds(session, spec, replayer, first_plan, spread)
            inherit.withdraw()
            alone_s = self._run_alone(session, [items[index] for index in alone])
        finally:
            inherit.withdraw()
            if self.crashes:
                self.compat_notes += compat.reports_missing(self.config)
            measured = replayer.durations
            finished = replayer.finished
            durations.save(
                self.config, {items[i].nodeid: measured[i] for i in finished if i in measured}
            )
            self.timing.wall_s = time.perf_counter() - started
            self.timing.test_time_s = replayer.test_time_s + alone_s
            self.run_dir.close()
            if self.cluster is not None:
                self.cluster.close()

    def _interrupted(self, name: str) -> None:
        """The first Ctrl-C (or SIGTERM): no new test starts, the tests running now get
        KeyboardInterrupt, and each worker tears its fixtures down as it ends its session."""
        self.stopping = True
        if self.stop_request is None:
            self.stop_request = StopRequest("interrupt", f"pytest-parproc: stopped by {name}")
        self.run_dir.request_stop()
        self.run_dir.interrupt_workers()
        os.write(
            2,
            (
                f"\nparproc: {name}: the workers tear their fixtures down (up to "
                f"{INTERRUPT_GRACE_S:g} s; {name} again stops them at once)\n"
            ).encode(),
        )

    def _run_alone(self, session: pytest.Session, items: list[pytest.Item]) -> float:
        """Tests that run alone after the parallel part (``compat.runs_alone``: benchmarks), in
        this process through pytest's own protocol, as serially; returns their time."""
        assert self.timing is not None
        spent_s = 0.0
        if items:
            release_held(self.config)
        self.view.lane = SERIAL_LANE
        with self.view.main_thread_tests():
            for position, item in enumerate(items):
                if self.stopping or self._stop_wanted(session):
                    break
                nextitem = items[position + 1] if position + 1 < len(items) else None
                started = time.perf_counter()
                self.stop_request = run_test(item.ihook, item, nextitem, "in the main process")
                busy_s = time.perf_counter() - started
                self.timing.add_test("main", os.getpid(), busy_s)
                spent_s += busy_s
        return spent_s

    def _rounds(
        self,
        session: pytest.Session,
        spec: RunSpec,
        replayer: Replayer,
        first_plan: list[Unit],
        remaining: list[int],
    ) -> None:
        items = replayer.items
        n_jobs = spec.n_workers
        number = 0
        unfinished: set[str] = set()
        while (remaining and not self.stopping) or unfinished:
            crashes_before = len(self.crashes)
            units: list[Unit] = []
            if number == 0:
                units = first_plan
            elif remaining and not self.stopping:
                planned = planned_items(items, remaining, self.options.dist)
                units = plan_units(planned, spec.n_workers, self.options.dist, self.durations)
            if units:
                n_jobs = max(2, min(spec.n_workers, len(units)))
            # A round without units only ends the sessions a crash left unfinished.
            closing = not units
            unfinished = self._play(session, Round(spec, number, units, n_jobs), replayer)
            number += 1
            if closing:
                break
            left = [index for index in remaining if index not in replayer.finished]
            if session.shouldstop and self.session_errors:
                break  # workers that cannot build a session: do not try again
            if self.stopping and not unfinished:
                break  # -x, Ctrl-C: the tests left do not run
            if len(left) == len(remaining) and len(self.crashes) == crashes_before:
                session.shouldfail = "pytest-parproc: the workers ran none of the tests left"
                break
            remaining = left

    def _play(self, session: pytest.Session, round_: Round, replayer: Replayer) -> set[str]:
        """Run one round; returns the workers whose session did not end (a crash let another
        worker take their end-of-round task)."""
        self._round = round_
        run_dir = self.run_dir
        outputs = round_.outputs(
            self.options.backend, self.isolates, lambda: self.stopping, self.cluster
        )
        try:
            for output in self.view.waiting(outputs):
                if isinstance(output, TaskResult):
                    round_.heard(output)
                    self._handle(session, output, replayer, run_dir)
                elif not isinstance(output, WorkerCrashedError):
                    raise TypeError(f"unexpected result from a worker: {output!r}")
                elif round_.first_news_of(output):
                    round_.crashed.add(self._crashed(session, output, run_dir, replayer, False))
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
        return round_.unfinished() if self.isolates else set()

    def _handle(
        self, session: pytest.Session, result: TaskResult, replayer: Replayer, run_dir: RunDirectory
    ) -> None:
        assert self.timing is not None
        self.timing.add(result)
        view = self.view
        view.lane = result.worker_id
        view.worker(
            result.worker_id, result.pid, result.process_started_at, result.ready_at, result.address
        )
        with view.span("replay"):
            for record in result.records:
                replayer.replay(record)
        # What the replay built (reports that the terminal's statistics and other plugins keep
        # to the end) leaves the garbage collector's care too, as the collected tests did
        # (``inherit.offer``): this process runs no test, and each of the collector's passes
        # over a growing heap would cost more. ``gc.freeze`` itself costs nothing.
        gc.freeze()
        for index in result.missing:
            nodeid = replayer.items[index].nodeid
            replayer.fail(
                index,
                "setup",
                f"pytest-parproc: worker {result.worker_id} did not collect {nodeid}. Every "
                "process must collect the same test ids: are parameter ids built from "
                "something that differs between processes (random values, object addresses)?",
            )
        if result.returned and not self.stopping and self._round is not None:
            # A worker that retired (--par-max-*) handed these back: they go first to the
            # next free worker, or to the next round if this one has no task left to hand out.
            items = replayer.items
            keys = tuple(pytest_internals.parametrization_key(items[i]) for i in result.returned)
            self._round.hand_back(Unit(tuple((i, items[i].nodeid) for i in result.returned), keys))
        if result.session_error:
            self.session_errors.append((result.worker_id, result.session_error))
            # Like a collection error: the run stops (exit code 2), the error is shown once.
            session.shouldstop = session.shouldstop or (
                f"pytest-parproc: worker {result.worker_id} could not build its pytest session"
            )
        if result.finish_error:
            self.finish_errors.append((result.worker_id, result.finish_error))
        if result.worker_output:
            compat.worker_finished(self.config, result.worker_output)
        if result.finished:
            self.config.hook.pytest_parproc_worker_finished(
                config=self.config, worker_id=result.worker_id, output=result.worker_output or {}
            )
        if result.stop is not None and self.stop_request is None:
            self.stop_request = result.stop
        if result.shouldstop and not session.shouldstop:
            session.shouldstop = result.shouldstop  # set by a test or a plugin in the worker
        self._check_stop(session, run_dir)

    @functools.cached_property
    def _start_limit(self) -> tuple[float, str]:
        """How long a worker may take to build its session, and why (fixed when the run
        starts, from this process's own start-up and collection)."""
        return start_limit(self.options, time.perf_counter() - self._configured_at)

    def _check_stop(self, session: pytest.Session, run_dir: RunDirectory) -> None:
        if self._stop_wanted(session) and not self.stopping:
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
        crashed_id, victim = self._recover(error, run_dir, replayer, aborted)
        heard_from = self._round.heard_from if self._round is not None else set()
        fault = fault_text(run_dir, crashed_id) if crashed_id else ""
        death = Death(error, crashed_id, victim, fault, building=crashed_id not in heard_from)
        verdict = judge(death, self.limit_text(), self._start_limit)
        kind = "timeout" if verdict.timed_out else "crash"
        if victim is not None:
            self.view.lane = crashed_id
            replayer.fail(victim.index, victim.phase, verdict.text)
        else:
            self.crash_notes.append(verdict.text)
        nodeid = replayer.items[victim.index].nodeid if victim is not None else None
        self.view.mark(crashed_id, kind, nodeid, verdict.text.split("\n", 1)[0])
        self.config.hook.pytest_parproc_worker_crashed(
            config=self.config,
            worker_id=crashed_id,
            nodeid=nodeid,
            phase=victim.phase if victim is not None else None,
            text=verdict.text,
        )
        if verdict.stop == "shouldstop":
            session.shouldstop = session.shouldstop or verdict.reason
        elif verdict.stop == "shouldfail":
            session.shouldfail = verdict.reason
        self.crashes.append(CrashReport(crashed_id, error.pid, error.exitcode, verdict.timed_out))
        exhausted = over_budget(self.crashes, self.options.max_worker_restart)
        if exhausted is not None:
            session.shouldfail = exhausted
        self._check_stop(session, run_dir)
        return crashed_id

    def _recover(
        self, error: WorkerCrashedError, run_dir: RunDirectory, replayer: Replayer, aborted: bool
    ) -> tuple[str, Victim | None]:
        """Kill what the dead worker's tests started and replay what it finished; returns its
        id and the test it was running. After an abort (the backend stopped every worker),
        the same for every worker, but only the dead one's running test is blamed: the
        others' run again."""
        worker_ids = run_dir.worker_ids_by_pid()
        crashed_id = run_dir.crashed_worker_id(error)
        local = "://" not in error.worker or "://127." in error.worker  # (a dask address)
        for pid in (set(worker_ids) if aborted else {error.pid}) if local else ():
            kill_process_group(pid)  # (a pid on another machine is not this one's to kill)
        victim = None
        pids = {worker_id: pid for pid, worker_id in worker_ids.items()}
        for worker_id in sorted(set(worker_ids.values()) if aborted else {crashed_id} - {""}):
            self.view.lane = worker_id
            self.view.worker(worker_id, pids.get(worker_id, error.pid or 0))  # (if it sent nothing)
            blamed = recover_log(run_dir, worker_id, replayer, blame=worker_id == crashed_id)
            if worker_id == crashed_id and blamed is not None:
                index, phase = blamed
                victim = Victim(index, replayer.items[index].nodeid, phase)
        return crashed_id, victim
