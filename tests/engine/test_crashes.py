"""Worker deaths: each way a worker can die is detected, named, isolated or raised."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import engine_tasks as tasks
import pytest
from processes import wait_until

from pytest_parproc import (
    Parallel,
    TaskTimeoutError,
    TerminatedWorkerError,
    WorkerCrashedError,
    WorkerStartError,
    delayed,
    parallel_config,
)
from pytest_parproc.parallel._pool.reusable import current_worker_pids, shutdown_reusable_pool
from pytest_parproc.parallel.backends import mp_pool

#: how -> (exit code, signal name) for the ways ``engine_tasks.die`` really kills its worker.
CRASHES = {
    "exit": (7, None),
    "sigkill": (-signal.SIGKILL, "SIGKILL"),
    "segfault": (-signal.SIGSEGV, "SIGSEGV"),
    "abort": (-signal.SIGABRT, "SIGABRT"),
}
RETURN_MODES = ["list", "generator", "generator_unordered"]


@pytest.fixture
def fresh_pool() -> Iterator[None]:
    """For tests that change pool settings: later tests start from a new pool."""
    yield
    shutdown_reusable_pool()


def assert_healthy(backend: str = "loky") -> None:
    results = Parallel(n_jobs=2, backend=backend)(delayed(tasks.square)(i) for i in range(10))
    assert results == [i * i for i in range(10)]


@pytest.mark.parametrize("how", list(CRASHES))
def test_a_dead_worker_fails_the_call_and_is_described(how: str) -> None:
    """A worker that dies by os._exit, SIGKILL, a segfault or abort() fails the call with
    WorkerCrashedError carrying the exit code, the signal, the task, the worker and the tail of
    its stderr; the pool is healthy for the next call.

    An out-of-memory kill is the kernel's SIGKILL: the ``sigkill`` case covers it.
    """
    exitcode, signal_name = CRASHES[how]
    with pytest.raises(WorkerCrashedError) as caught:
        Parallel(n_jobs=2)(delayed(tasks.die)(i, how, 3) for i in range(8))
    error = caught.value
    assert error.exitcode == exitcode
    assert error.signal_name == signal_name
    message = str(error)
    assert "task 3 (die)" in message
    assert error.worker
    assert isinstance(error.pid, int) and error.pid != os.getpid()
    assert f"worker {error.worker} (pid {error.pid})" in message
    assert f"worker about to die by {how}" in error.stderr_tail
    if how in ("segfault", "abort"):
        # faulthandler's dump of the fatal signal, written by the dying worker.
        assert "Fatal Python error" in error.stderr_tail
    assert_healthy()


def test_terminated_worker_error_is_joblibs_name_for_a_crash() -> None:
    """Code written against joblib catches the same error under its name."""
    assert TerminatedWorkerError is WorkerCrashedError
    with pytest.raises(TerminatedWorkerError):
        Parallel(n_jobs=2)(delayed(tasks.die)(i, "exit", 1) for i in range(3))


def test_sys_exit_in_a_task_is_raised_even_when_crashes_are_isolated() -> None:
    """SystemExit in a task is an ordinary error, not a dead worker: it is raised under
    crash_policy='isolate', never returned as a WorkerCrashedError."""
    with pytest.raises(SystemExit):
        Parallel(n_jobs=2, crash_policy="isolate")(
            delayed(tasks.die)(i, "sys.exit", 3) for i in range(8)
        )
    assert_healthy()


@pytest.mark.parametrize("return_as", RETURN_MODES)
@pytest.mark.parametrize("how", list(CRASHES))
def test_isolate_returns_the_crash_in_the_dead_tasks_slot(how: str, return_as: str) -> None:
    """With crash_policy='isolate' the call completes: every other result is there and right,
    and the crashed task's slot holds the WorkerCrashedError instance (returned, not raised)."""
    output = Parallel(n_jobs=2, crash_policy="isolate", return_as=return_as)(
        delayed(tasks.die)(i, how, 3) for i in range(8)
    )
    results = list(output)
    crashes = [value for value in results if isinstance(value, WorkerCrashedError)]
    assert len(crashes) == 1
    assert crashes[0].exitcode == CRASHES[how][0]
    assert "task 3 (die)" in str(crashes[0])
    others = [value for value in results if not isinstance(value, WorkerCrashedError)]
    if return_as == "generator_unordered":
        assert sorted(others) == [0, 1, 2, 4, 5, 6, 7]
    else:
        assert results.index(crashes[0]) == 3
        assert others == [0, 1, 2, 4, 5, 6, 7]


@pytest.mark.slow
def test_isolate_with_timeout_returns_the_timeout_and_finishes_the_rest() -> None:
    """With crash_policy='isolate' and a timeout on loky, a task that runs too long is stopped
    and gets a TaskTimeoutError instance as its result; the other tasks finish.

    The timeout is 2 s rather than 1 s so that a trivial task on a loaded machine is never
    mistaken for a slow one; the slow task sleeps 60 s.
    """
    results = Parallel(n_jobs=2, crash_policy="isolate", timeout=2.0)(
        delayed(tasks.sleep_then)(i, 60 if i == 2 else 0) for i in range(6)
    )
    assert isinstance(results[2], TaskTimeoutError)
    assert "task 2 (sleep_then)" in str(results[2])
    assert results[:2] + results[3:] == [0, 1, 3, 4, 5]
    assert_healthy()


def test_isolate_is_refused_by_the_multiprocessing_backend() -> None:
    """multiprocessing.Pool cannot tell which task a dead worker ran, so crash_policy='isolate'
    fails at construction with a ValueError that names the backend."""
    with pytest.raises(ValueError, match="multiprocessing"):
        Parallel(n_jobs=2, backend="multiprocessing", crash_policy="isolate")


def test_multiprocessing_reports_a_sigkill_even_when_its_watcher_runs_late(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker SIGKILLed under the multiprocessing backend fails the call with
    WorkerCrashedError instead of hanging, even when the thread that watches the workers first
    runs after multiprocessing.Pool has already reaped and replaced the dead one (as happens on
    a loaded machine; the Pool's handler thread reaps dead workers at once).

    The watcher is held back until the Pool has replaced a worker; ``timeout`` turns the hang
    this would otherwise cause into a TaskTimeoutError.
    """
    original_watch = mp_pool.MultiprocessingBackend._watch

    def late_watch(self: Any, pool: Any, stopping: threading.Event) -> None:
        first = {process.pid for process in mp_pool._pool_processes(pool)}
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not stopping.is_set():
            if {process.pid for process in mp_pool._pool_processes(pool)} - first:
                break
            time.sleep(0.01)
        original_watch(self, pool, stopping)

    monkeypatch.setattr(mp_pool.MultiprocessingBackend, "_watch", late_watch)
    with pytest.raises(WorkerCrashedError) as caught:
        Parallel(n_jobs=2, backend="multiprocessing", timeout=3.0)(
            delayed(tasks.die)(i, "sigkill", 3) for i in range(8)
        )
    assert caught.value.exitcode == -signal.SIGKILL


def test_multiprocessing_reports_a_sigkilled_worker() -> None:
    """Under the multiprocessing backend a SIGKILLed worker fails the call with
    WorkerCrashedError naming the signal, rather than hanging; the next call works.

    A ``timeout`` turns a missed crash into a TaskTimeoutError instead of a hung session.
    The call is repeated because the race it pins (the pool's thread reaping the dead worker
    at the same moment as ours) only shows now and then.
    """
    for _ in range(5):
        with pytest.raises(WorkerCrashedError) as caught:
            Parallel(n_jobs=2, backend="multiprocessing", timeout=10.0)(
                delayed(tasks.die)(i, "sigkill", 3) for i in range(8)
            )
        assert caught.value.exitcode == -signal.SIGKILL
        # The Pool cannot tell which task died: the message names a running one of this call.
        assert "(die)" in str(caught.value)
    assert_healthy("multiprocessing")


@pytest.mark.slow
def test_a_failing_initializer_is_a_start_error_not_a_respawn_loop(fresh_pool: None) -> None:
    """An initializer that raises makes the call fail with WorkerStartError carrying the
    initializer's error; the pool stops starting workers; a later call without it works.

    The initializer is a local function, which cloudpickle sends by value (see the next test
    for one sent by reference).
    """

    def exploding_initializer() -> None:
        raise RuntimeError("initializer exploded on purpose")

    with (
        parallel_config(backend="loky", initializer=exploding_initializer),
        pytest.raises(WorkerStartError, match="initializer exploded on purpose"),
    ):
        Parallel(n_jobs=2)(delayed(tasks.square)(i) for i in range(8))
    # A pool that respawned failing workers forever would never be seen without workers.
    assert wait_until(lambda: not current_worker_pids())
    time.sleep(0.5)
    assert current_worker_pids() == []
    assert_healthy()


def test_an_initializer_from_the_callers_sys_path_reports_its_own_error(
    fresh_pool: None,
) -> None:
    """A failing initializer imported from a module on the caller's sys.path (not on the
    worker's default one) is reported with its own error, not an import error."""
    with (
        parallel_config(backend="loky", initializer=tasks.failing_initializer),
        pytest.raises(WorkerStartError, match="initializer exploded on purpose"),
    ):
        Parallel(n_jobs=2)(delayed(tasks.square)(i) for i in range(8))
    assert_healthy()


def test_worker_crashed_error_survives_pickling() -> None:
    """A WorkerCrashedError crosses a process boundary with its data and message intact."""
    error = WorkerCrashedError(
        exitcode=-signal.SIGKILL,
        pid=4242,
        worker="w3",
        task="task 3 (die)",
        stderr_tail="worker about to die by sigkill",
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is WorkerCrashedError
    assert copy.exitcode == -signal.SIGKILL
    assert copy.signal_name == "SIGKILL"
    assert copy.pid == 4242
    assert copy.worker == "w3"
    assert copy.task == "task 3 (die)"
    assert copy.stderr_tail == "worker about to die by sigkill"
    assert str(copy) == str(error)
    assert "task 3 (die)" in str(copy)


def test_a_real_crash_error_survives_pickling() -> None:
    """The error raised for a real crash pickles with its exit code, stderr tail and message."""
    with pytest.raises(WorkerCrashedError) as caught:
        Parallel(n_jobs=2)(delayed(tasks.die)(i, "exit", 1) for i in range(3))
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.exitcode == 7
    assert copy.stderr_tail == caught.value.stderr_tail
    assert "worker about to die by exit" in copy.stderr_tail
    assert str(copy) == str(caught.value)


@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_a_task_that_exits_with_status_zero_is_a_crash(backend: str) -> None:
    """os._exit(0) in a task ends its worker without an error code; the call must still fail
    (a multiprocessing.Pool would otherwise wait for the lost result forever)."""
    with pytest.raises(WorkerCrashedError) as caught:
        Parallel(n_jobs=2, backend=backend)(delayed(tasks.die)(i, "exit0", 3) for i in range(8))
    assert caught.value.exitcode == 0
    assert_healthy(backend)


@pytest.mark.slow
def test_a_worker_dead_while_holding_a_queue_lock_does_not_hang_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """multiprocessing.Pool.terminate() waits forever for a lock that a dead worker held: the
    backend gives it a limit, kills the workers, and raises the crash."""
    monkeypatch.setattr(mp_pool, "TERMINATE_WAIT_S", 1.0, raising=False)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            Parallel(n_jobs=2, backend="multiprocessing")(
                delayed(tasks.die_holding_queue_locks)(i, 3) for i in range(6)
            )
        except BaseException as error:
            outcome.append(error)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(60)
    assert not caller.is_alive(), "the call hung"
    assert [type(error) for error in outcome] == [WorkerCrashedError]
