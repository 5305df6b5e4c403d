"""The loky backend's reusable pool: reuse, resizing, recycling, worker set-up and lifetime."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import engine_tasks as tasks
import psutil
import pytest
from processes import still_running, wait_until

from pytest_parproc import (
    Parallel,
    cpu_count,
    delayed,
    parallel_config,
)
from pytest_parproc.parallel._pool.reusable import current_worker_pids, shutdown_reusable_pool

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
WORKER_MODULE = "pytest_parproc.parallel._pool.worker"


@pytest.fixture(autouse=True)
def fresh_pool() -> Iterator[None]:
    """Each test starts from no pool and leaves none behind: these tests change pool settings
    and read the environment workers are started with."""
    shutdown_reusable_pool()
    yield
    shutdown_reusable_pool()


def worker_pids_of(results: list[tuple[int, int]]) -> set[int]:
    return {pid for pid, _ in results}


def identities(n_tasks: int, n_jobs: int = 2) -> list[tuple[int, int]]:
    results: list[tuple[int, int]] = Parallel(n_jobs=n_jobs, batch_size=1)(
        delayed(tasks.worker_identity)(i) for i in range(n_tasks)
    )
    return results


def test_workers_are_reused_across_calls() -> None:
    """A second call runs on the workers the first one started."""
    first = worker_pids_of(identities(20))
    pool = set(current_worker_pids())  # a loaded machine may run all 20 on one worker
    second = worker_pids_of(identities(20))
    assert os.getpid() not in first
    assert first <= pool and second <= pool


@pytest.mark.slow
def test_a_smaller_call_shrinks_the_pool() -> None:
    """A call with fewer workers than the pool has retires the extra ones.

    ``n_jobs=1`` would run in the caller without touching the pool (as in joblib), so the pool
    grows to 3 and shrinks to 2.
    """
    Parallel(n_jobs=3, batch_size=1)(delayed(tasks.sleep_then)(i, 0.05) for i in range(24))
    assert len(current_worker_pids()) == 3
    identities(10, n_jobs=2)
    assert wait_until(lambda: len(current_worker_pids()) <= 2), current_worker_pids()


@pytest.mark.slow
def test_idle_workers_exit_after_the_idle_timeout() -> None:
    """With idle_worker_timeout, workers that have nothing to do exit by themselves."""
    with parallel_config(backend="loky", idle_worker_timeout=0.5):
        pids = worker_pids_of(identities(6))
    assert pids and os.getpid() not in pids
    assert wait_until(lambda: not current_worker_pids()), current_worker_pids()
    assert not still_running(pids)


def test_max_tasks_per_worker_recycles_workers() -> None:
    """With max_tasks_per_worker=2, 10 single-task batches need at least 5 workers."""
    with parallel_config(backend="loky", max_tasks_per_worker=2):
        pids = worker_pids_of(identities(10))
    assert len(pids) >= 5


def test_max_worker_memory_recycles_workers() -> None:
    """With max_worker_memory=1 byte every worker is over the limit after each batch, so 6
    single-task batches run in 6 different workers."""
    with parallel_config(backend="loky", max_worker_memory=1):
        pids = worker_pids_of(identities(6))
    assert len(pids) == 6


def test_an_invalid_max_worker_memory_is_refused_at_once() -> None:
    """A max_worker_memory that is not a size fails when the config is made, not in a worker."""
    with pytest.raises(ValueError, match="abc"):
        parallel_config(backend="loky", max_worker_memory="abc")


def test_initializer_runs_with_its_arguments_in_every_worker() -> None:
    """initializer(*initargs) runs once in each worker before its first task.

    The initializer is a local function (cloudpickle sends it by value) that imports the task
    module when it runs; see the next test for one sent by reference.
    """

    def remember_in_worker(value: Any) -> None:
        import engine_tasks

        engine_tasks.remember(value)

    with parallel_config(backend="loky", initializer=remember_in_worker, initargs=("hello",)):
        results = Parallel(n_jobs=2, batch_size=1)(
            delayed(tasks.initialized_values)(i) for i in range(8)
        )
    assert results == [["hello"]] * 8


def test_initializer_from_the_callers_sys_path_runs_in_every_worker() -> None:
    """An initializer from a module on the caller's sys.path runs with its initargs."""
    with parallel_config(backend="loky", initializer=tasks.remember, initargs=("hello",)):
        results = Parallel(n_jobs=2, batch_size=1)(
            delayed(tasks.initialized_values)(i) for i in range(8)
        )
    assert results == [["hello"]] * 8


def test_finalizer_runs_in_every_worker_at_shutdown(tmp_path: Path) -> None:
    """finalizer() runs in each worker when the pool stops it normally.

    The finalizer is a local function (sent by value); see the next test.
    """
    folder = str(tmp_path)

    def finalize() -> None:
        import engine_tasks

        engine_tasks.write_on_exit(folder)

    with parallel_config(backend="loky", finalizer=finalize):
        identities(8)
        pids = current_worker_pids()
    assert pids
    assert not list(tmp_path.iterdir()), "a finalizer ran before the pool was stopped"
    shutdown_reusable_pool()
    written = {path.name for path in tmp_path.iterdir()}
    assert written == {f"finalized-{pid}" for pid in pids}


def test_finalizer_from_the_callers_sys_path_runs_at_shutdown(tmp_path: Path) -> None:
    """A finalizer from a module on the caller's sys.path writes its file in each worker."""
    finalizer = functools.partial(tasks.write_on_exit, str(tmp_path))
    with parallel_config(backend="loky", finalizer=finalizer):
        identities(8)
        pids = current_worker_pids()
    shutdown_reusable_pool()
    assert {path.name for path in tmp_path.iterdir()} == {f"finalized-{pid}" for pid in pids}


def omp_values(n_jobs: int = 2) -> set[str | None]:
    values: list[str | None] = Parallel(n_jobs=n_jobs, batch_size=1)(
        delayed(tasks.environment_value)("OMP_NUM_THREADS") for _ in range(6)
    )
    return set(values)


def test_inner_max_num_threads_limits_native_threads_in_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """inner_max_num_threads sets OMP_NUM_THREADS (and its siblings) in the workers.

    A second value, different from the default share, shows the setting is what is seen.
    """
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with parallel_config(backend="loky", inner_max_num_threads=1):
        assert omp_values() == {"1"}
    distinct = max(1, cpu_count() // 2) + 1
    with parallel_config(backend="loky", inner_max_num_threads=distinct):
        assert omp_values() == {str(distinct)}


def test_workers_get_a_share_of_the_cpus_for_native_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without inner_max_num_threads (and none set in the caller), each worker's
    OMP_NUM_THREADS is its share of the CPUs: cpu_count() // n_jobs, at least 1."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert omp_values() == {str(max(1, cpu_count() // 2))}


def test_env_reaches_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loky backend's env parameter adds variables to the workers' environment."""
    monkeypatch.delenv("PARPROC_TEST_VAR", raising=False)
    with parallel_config(backend="loky", env={"PARPROC_TEST_VAR": "x"}):
        values = Parallel(n_jobs=2, batch_size=1)(
            delayed(tasks.environment_value)("PARPROC_TEST_VAR") for _ in range(4)
        )
    assert values == ["x"] * 4


def test_worker_stderr_is_forwarded_to_the_callers_stderr(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """What a task writes to stderr in a worker shows up on the caller's stderr."""
    marker = f"marker-123-{os.getpid()}"
    Parallel(n_jobs=2)([delayed(tasks.write_stderr)(marker + "\n")] * 2)
    seen = ""

    def forwarded() -> bool:
        nonlocal seen
        seen += capfd.readouterr().err
        return marker in seen

    # The pool's thread forwards stderr as it arrives, maybe after the results.
    assert wait_until(forwarded), seen


PARENT_SCRIPT = textwrap.dedent(
    """
    import os
    import signal

    from pytest_parproc import Parallel, delayed
    from pytest_parproc.parallel._pool.reusable import current_worker_pids

    Parallel(n_jobs=2, batch_size=1)(delayed(os.getpid)() for _ in range(8))
    print(" ".join(map(str, current_worker_pids())), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def is_worker(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE and any(
            WORKER_MODULE in part for part in process.cmdline()
        )
    except psutil.Error:
        return False


@pytest.mark.slow
def test_workers_exit_when_their_parent_is_killed() -> None:
    """Workers whose parent died by SIGKILL (no clean-up ran) notice and exit by themselves."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY_ROOT,
    )
    output, _ = parent.communicate(timeout=60)
    assert parent.returncode == -signal.SIGKILL
    pids = [int(word) for word in output.split()]
    assert len(pids) == 2
    left = [process for process in still_running(pids, limit_s=15) if is_worker(process)]
    for process in left:
        process.kill()
    assert not left, f"orphaned workers still running: {left}"


def test_workers_are_fresh_interpreters_not_forks() -> None:
    """Workers are started by fork+exec of the Python interpreter running the worker module,
    never as a bare fork of the (threaded) caller."""
    identities(6)
    pids = current_worker_pids()
    assert pids
    for pid in pids:
        process = psutil.Process(pid)
        command = process.cmdline()
        assert os.path.realpath(command[0]) == os.path.realpath(sys.executable)
        assert any(WORKER_MODULE in part for part in command), command
        assert process.ppid() == os.getpid()


def test_what_a_task_prints_reaches_stdout_without_waiting_for_the_worker_to_exit(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers share the caller's stdout and flush it after each batch, so printed lines show
    up while the pool is still alive (stdout is block-buffered when it is not a terminal)."""
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # workers inherit the environment
    Parallel(n_jobs=2)(delayed(tasks.print_line)(f"line-{i}") for i in range(4))
    seen: list[str] = []

    def all_lines_seen() -> bool:
        seen.append(capfd.readouterr().out)
        return all(f"line-{i}" in "".join(seen) for i in range(4))

    assert wait_until(all_lines_seen)
    assert current_worker_pids(), "the pool is still warm: nothing waited for an exit"


def test_what_a_multiprocessing_task_prints_survives_the_pool(tmp_path: Path) -> None:
    """A multiprocessing pool is terminated at the end of its call, and a terminated worker
    never flushes its block-buffered stdout: workers flush after each batch."""
    script = textwrap.dedent(
        """
        from pytest_parproc import Parallel, delayed

        def shout(i):
            print(f"line-{i}")
            return i

        if __name__ == "__main__":
            Parallel(n_jobs=2, backend="multiprocessing")(delayed(shout)(i) for i in range(4))
        """
    )
    (tmp_path / "shout.py").write_text(script)
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    completed = subprocess.run(
        [sys.executable, str(tmp_path / "shout.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert sorted(completed.stdout.split()) == [f"line-{i}" for i in range(4)]


def test_a_task_can_ask_its_worker_to_retire() -> None:
    """The worker that ran the asking task runs nothing after it; the call completes."""
    results = Parallel(n_jobs=2, batch_size=1, pre_dispatch="n_jobs")(
        delayed(tasks.retire_on)(i, 0) for i in range(12)
    )
    assert [value for value, _ in results] == list(range(12))
    retired = results[0][1]
    assert all(pid != retired for _, pid in results[1:])


def test_retire_worker_outside_a_worker_does_nothing() -> None:
    from pytest_parproc import retire_worker

    retire_worker("not a worker")  # no pool, no error
    assert Parallel(n_jobs=2)(delayed(tasks.square)(i) for i in range(3)) == [0, 1, 4]


def test_retire_worker_in_the_caller_leaves_no_trace() -> None:
    from pytest_parproc.parallel._pool import worker as worker_module

    worker_module.retire_worker("called in the caller")
    assert worker_module._retire_reason == ""
