"""The process controller's decisions (stop, blame, restart budget), fed with stand-in workers:
a real run directory with the progress logs a worker writes, stand-in results and deaths, and
a stand-in replayer; no process is started (in the style of pytest-xdist's ``test_dsession``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_parproc.parallel import WorkerCrashedError
from pytest_parproc.plugin.messages import ItemRecord, RunSpec, StopRequest, TaskResult, Unit
from pytest_parproc.plugin.options import ParprocOptions
from pytest_parproc.plugin.processes import controller as controller_module
from pytest_parproc.plugin.processes.controller import ProcessController
from pytest_parproc.plugin.processes.rounds import Round
from pytest_parproc.plugin.processes.rundir import ProgressLog, RunDirectory
from pytest_parproc.plugin.stopping import stop_wanted
from pytest_parproc.plugin.timing import RunTiming

NODEIDS = [f"test_m.py::test_{number}" for number in range(6)]


class StandInReplayer:
    """Records what the controller replays and fails, as the real one would log it."""

    def __init__(self) -> None:
        self.items = [SimpleNamespace(nodeid=nodeid) for nodeid in NODEIDS]
        self.finished: set[int] = set()
        self.replayed: list[ItemRecord] = []
        self.failed: list[tuple[int, str, str]] = []

    def replay(self, record: ItemRecord) -> None:
        self.replayed.append(record)
        if record.complete:
            self.finished.add(record.index)

    def fail(self, index: int, when: str, text: str) -> None:
        self.failed.append((index, when, text))
        self.finished.add(index)


class Run:
    """A controller in the middle of a round, with its run directory and stand-ins."""

    def __init__(self, tmp_path: Path, backend: str = "loky", max_worker_restart: int = 4):
        options = ParprocOptions(
            n_jobs=2, backend=backend, max_worker_restart=max_worker_restart, sources={}
        )
        #: the plugin hooks the controller called (``pytest_parproc_worker_crashed``, ...)
        self.hook_calls: list[tuple[str, dict[str, Any]]] = []

        def hook(name: str) -> Any:
            return lambda **kwargs: self.hook_calls.append((name, kwargs))

        hooks = SimpleNamespace(
            pytest_parproc_worker_crashed=hook("crashed"),
            pytest_parproc_worker_finished=hook("finished"),
        )
        config = SimpleNamespace(hook=hooks, stash=pytest.Stash())
        self.controller = ProcessController(config, options)  # type: ignore[arg-type]
        self.controller.timing = RunTiming(0.0)
        self.run_dir = RunDirectory(tmp_path)
        spec = RunSpec("run", str(tmp_path), (), str(tmp_path), 2, None)
        self.round = self.controller._round = Round(spec, 0, [], 2)
        self.session: Any = SimpleNamespace(shouldstop=False, shouldfail=False)
        self.replayer = StandInReplayer()

    def worker(self, worker_id: str, pid: int) -> ProgressLog:
        """A stand-in worker: its id claimed for ``pid``, and its progress log."""
        (self.run_dir.path / worker_id).write_text(str(pid))
        return ProgressLog(self.run_dir.log_path(worker_id))

    def result(self, result: TaskResult) -> None:
        self.round.heard(result)
        self.controller._handle(self.session, result, self.replayer, self.run_dir)  # type: ignore[arg-type]

    def death(self, pid: int, aborted: bool = False) -> str:
        error = WorkerCrashedError(exitcode=-9, pid=pid)
        return self.controller._crashed(self.session, error, self.run_dir, self.replayer, aborted)  # type: ignore[arg-type]


@pytest.fixture
def killed(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The process groups the controller kills (recorded, not killed: the pids are made up)."""
    calls: list[int | None] = []
    monkeypatch.setattr(controller_module, "kill_process_group", calls.append)
    return calls


def passed(when: str, index: int) -> dict[str, Any]:
    return {"when": when, "outcome": "passed", "nodeid": NODEIDS[index]}


def test_the_one_stop_rule() -> None:
    session: Any = SimpleNamespace(shouldstop=False, shouldfail=False)
    assert not stop_wanted(session)
    assert stop_wanted(session, StopRequest("exit", "bye"))
    assert not stop_wanted(session, failures=2, maxfail=3)
    assert stop_wanted(session, failures=3, maxfail=3)
    assert not stop_wanted(session, failures=3, maxfail=0)  # no --maxfail
    session.shouldfail = "pytest: stopping after 1 failures"
    assert stop_wanted(session)


def test_a_worker_dying_in_a_test_blames_it_and_the_run_goes_on(
    tmp_path: Path, killed: list[int | None]
) -> None:
    run = Run(tmp_path)
    log = run.worker("w1", 101)
    log.write("start", 0)
    log.write("report", 0, passed("setup", 0))
    log.write("end", 0, True)
    log.write("start", 1)
    log.write("report", 1, passed("setup", 1))  # then it died in the call
    assert run.death(101) == "w1"
    assert killed == [101]
    assert [record.index for record in run.replayer.replayed] == [0, 1]
    [(index, when, text)] = run.replayer.failed
    assert (index, when) == (1, "call")
    assert (
        f"worker w1 (pid 101) was killed by SIGKILL (exit code -9) while running {NODEIDS[1]}"
        in text
    )
    assert not run.session.shouldfail and not run.session.shouldstop
    assert not run.controller.stopping and not run.run_dir.stop_requested()
    # plugins hear of it: the worker, the test and phase it cost, the run's text
    [(name, call)] = run.hook_calls
    assert (name, call["worker_id"], call["nodeid"], call["phase"]) == (
        "crashed",
        "w1",
        NODEIDS[1],
        "call",
    )
    assert call["text"] == text


def test_one_crash_more_than_the_budget_stops_the_run(
    tmp_path: Path, killed: list[int | None]
) -> None:
    run = Run(tmp_path, max_worker_restart=1)
    for number, pid in enumerate((201, 202)):
        run.worker(f"w{number}", pid).write("start", number)
        run.death(pid)
        stopped = number == 1
        assert bool(run.session.shouldfail) is stopped
        assert run.controller.stopping is stopped
    assert run.session.shouldfail == "pytest-parproc: 2 worker crashes (--par-max-worker-restart=1)"
    assert run.run_dir.stop_requested()  # the other workers start no new test


def test_timeouts_are_not_counted_against_the_budget(
    tmp_path: Path, killed: list[int | None]
) -> None:
    run = Run(tmp_path, max_worker_restart=0)
    for number in range(3):
        worker_id, pid = f"w{number}", 300 + number
        run.worker(worker_id, pid).write("start", number)
        run.run_dir.fault_path(worker_id).write_text("Timeout (0:00:02)!\nstacks")
        run.death(pid)
    assert [when for _, when, _ in run.replayer.failed] == ["setup"] * 3
    assert all("ran past the time limit" in text for _, _, text in run.replayer.failed)
    assert not run.session.shouldfail and not run.controller.stopping


@pytest.mark.parametrize("heard", [False, True])
def test_a_death_outside_any_test_is_noted_and_stops_the_run(
    tmp_path: Path, killed: list[int | None], heard: bool
) -> None:
    run = Run(tmp_path)
    run.worker("w0", 401)
    if heard:
        run.result(TaskResult(worker_id="w0", pid=401))
    run.death(401)
    assert run.replayer.failed == []
    [note] = run.controller.crash_notes
    if heard:  # it had built its session: the run fails
        assert "while it was not running a test" in note
        assert run.session.shouldfail and not run.session.shouldstop
    else:  # still building its session: like a collection error (exit code 2)
        assert "while building its session" in note
        assert run.session.shouldstop and not run.session.shouldfail
    assert run.controller.stopping


def test_after_an_abort_every_worker_is_recovered_and_only_the_dead_one_blamed(
    tmp_path: Path, killed: list[int | None]
) -> None:
    run = Run(tmp_path, backend="multiprocessing")
    dead, alive = run.worker("w0", 501), run.worker("w1", 502)
    dead.write("start", 0)
    alive.write("start", 1)
    alive.write("report", 1, passed("setup", 1))
    alive.write("report", 1, passed("call", 1))
    alive.write("report", 1, passed("teardown", 1))
    alive.write("end", 1, True)
    alive.write("start", 2)  # stopped by the engine, not by its test: runs again later
    run.death(501, aborted=True)
    assert sorted(killed) == [501, 502]
    assert [(index, when) for index, when, _ in run.replayer.failed] == [(0, "setup")]
    assert run.replayer.finished == {0, 1}


def test_results_that_ask_the_run_to_stop(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.result(TaskResult(worker_id="w0", pid=1, stop=StopRequest("exit", "bye", 3)))
    assert run.controller.stop_request == StopRequest("exit", "bye", 3)
    assert run.controller.stopping and run.run_dir.stop_requested()

    run = Run(tmp_path / "shouldstop")
    run.run_dir.path.mkdir()
    run.result(TaskResult(worker_id="w0", pid=1, shouldstop="set by a test"))
    assert run.session.shouldstop == "set by a test" and run.controller.stopping


def test_a_worker_that_cannot_build_its_session_stops_the_run_once(tmp_path: Path) -> None:
    run = Run(tmp_path)
    for worker_id in ("w0", "w1"):
        run.result(TaskResult(worker_id=worker_id, pid=1, session_error="ImportError: conftest"))
    assert run.session.shouldstop == "pytest-parproc: worker w0 could not build its pytest session"
    assert [worker for worker, _ in run.controller.session_errors] == ["w0", "w1"]


def test_tests_a_retiring_worker_hands_back_go_first(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.round.queue.append(Unit(((5, NODEIDS[5]),)))
    run.result(TaskResult(worker_id="w0", pid=1, returned=[2, 3], finished=True))
    assert [unit.items for unit in run.round.queue] == [
        ((2, NODEIDS[2]), (3, NODEIDS[3])),
        ((5, NODEIDS[5]),),
    ]


def test_a_test_the_worker_did_not_collect_fails_in_setup(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.result(TaskResult(worker_id="w1", pid=1, missing=[4]))
    [(index, when, text)] = run.replayer.failed
    assert (index, when) == (4, "setup")
    assert f"worker w1 did not collect {NODEIDS[4]}" in text


def test_a_round_knows_whose_session_is_unfinished(tmp_path: Path) -> None:
    round_ = Run(tmp_path).round
    for worker_id, finished in (("w0", False), ("w1", False), ("w1", True), ("w2", False)):
        round_.heard(TaskResult(worker_id=worker_id, pid=1, finished=finished))
    round_.crashed.add("w2")
    assert round_.unfinished() == {"w0"}
