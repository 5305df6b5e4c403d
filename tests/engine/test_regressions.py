"""Regression tests for defects found in review, one per defect."""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import engine_tasks as tasks
import pytest

from pytest_parproc import (
    Parallel,
    UnpicklableTaskError,
    WorkerCrashedError,
    WorkerStartError,
    delayed,
    parallel_config,
)
from pytest_parproc.parallel._pool.reusable import shutdown_reusable_pool


@pytest.fixture
def fresh_pool() -> Iterator[None]:
    shutdown_reusable_pool()
    yield
    shutdown_reusable_pool()


@pytest.mark.slow
def test_recycled_workers_never_run_a_task_twice(fresh_pool: None, tmp_path: Path) -> None:
    """A worker at its task limit announces it before its result, so the pool neither sends
    it another batch nor runs its last batch again elsewhere (before the fix, most runs of
    this loop ran some task twice or reported a crash with exit code 0)."""
    for repetition in range(6):
        folder = tmp_path / str(repetition)
        folder.mkdir()
        with parallel_config(backend="loky", max_tasks_per_worker=1):
            results = Parallel(n_jobs=6)(
                delayed(tasks.mark_and_return)(i, str(folder), i % 2 == 1) for i in range(24)
            )
        assert len(results) == 24
        runs = collections.Counter(name.split(".")[0] for name in os.listdir(folder))
        assert runs == {str(i): 1 for i in range(24)}


@pytest.mark.slow
def test_multiprocessing_sees_a_replacement_worker_die(fresh_pool: None) -> None:
    """With maxtasksperchild=1 the pool replaces a worker after every task; one that dies at
    once must still fail the call (it used to hang: the watcher never saw that worker). The
    timeout turns a regression into a TaskTimeoutError instead of a hung session."""
    for when in (5, 11, 17, 23):
        with (
            parallel_config(backend="multiprocessing", maxtasksperchild=1),
            pytest.raises(WorkerCrashedError),
        ):
            Parallel(n_jobs=2, batch_size=1, timeout=30)(
                delayed(tasks.kill_self_on)(i, when) for i in range(30)
            )


def test_an_initializer_argument_that_cannot_travel_is_the_callers_error(
    fresh_pool: None,
) -> None:
    """The pool serializes its worker setup in the caller: an unpicklable initarg is an
    UnpicklableTaskError there, and the engine keeps working (before, the manager thread died
    and every later call in the process failed)."""
    with (
        parallel_config(backend="loky", initializer=print, initargs=(threading.Lock(),)),
        pytest.raises(UnpicklableTaskError, match="initializer, initargs or finalizer"),
    ):
        Parallel(n_jobs=2)(delayed(tasks.square)(i) for i in range(4))
    assert Parallel(n_jobs=2)(delayed(tasks.square)(i) for i in range(4)) == [0, 1, 4, 9]


def test_a_with_block_survives_the_shared_pool_being_replaced(fresh_pool: None) -> None:
    """When the shared pool is shut down under a ``with Parallel`` block (another call with
    other settings does that), the block's next call takes the current pool instead of
    failing, and the old pool writes nothing to its closed wake-up pipe's reused number."""
    with Parallel(n_jobs=2) as parallel:
        assert parallel(delayed(tasks.square)(i) for i in range(4)) == [0, 1, 4, 9]
        old_pool = parallel.backend._pool  # type: ignore[attr-defined]
        shutdown_reusable_pool()
        read_end, write_end = os.pipe()  # likely to reuse the old pool's numbers
        try:
            old_pool.cancel([])
            old_pool.resize(3)
            os.set_blocking(read_end, False)
            with pytest.raises(BlockingIOError):
                os.read(read_end, 10)
        finally:
            os.close(read_end)
            os.close(write_end)
        assert parallel(delayed(tasks.square)(i) for i in range(4)) == [0, 1, 4, 9]


@pytest.mark.slow
def test_threading_starts_no_queued_task_after_the_call_failed() -> None:
    """After a task raises, batches still queued are dropped: only tasks already running may
    still start (before, the threads worked through the whole queue)."""
    started: list[int] = []
    with pytest.raises(ValueError, match="stop here"):
        Parallel(n_jobs=2, backend="threading", batch_size=1, pre_dispatch="all")(
            delayed(tasks.record_start)(i, started, 5) for i in range(200)
        )
    count_at_raise = len(started)
    time.sleep(0.5)  # not a timing assertion: it gives a wrongly queued task time to start
    assert len(started) <= count_at_raise + 2


def test_verbose_true_counts_as_one() -> None:
    """joblib accepts ``verbose=True``."""
    assert Parallel(n_jobs=2, verbose=True).verbose == 1


@pytest.mark.slow
def test_a_worker_that_never_gets_ready_fails_the_call(fresh_pool: None) -> None:
    """A hung initializer must not keep the caller waiting forever, with or without a task
    timeout: after ``worker_start_timeout`` the call fails with WorkerStartError."""

    def hang() -> None:
        time.sleep(60)

    with (
        parallel_config(backend="loky", initializer=hang, worker_start_timeout=1),
        pytest.raises(WorkerStartError, match="did not become ready within 1 s"),
    ):
        Parallel(n_jobs=2, timeout=1)(delayed(tasks.square)(i) for i in range(4))
    assert Parallel(n_jobs=2)(delayed(tasks.square)(i) for i in range(4)) == [0, 1, 4, 9]


@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_an_exception_that_does_not_unpickle_is_reported_not_crashing_the_caller(
    backend: str,
) -> None:
    with pytest.raises(UnpicklableTaskError, match=r"KeywordOnlyError.*cannot be rebuilt"):
        Parallel(n_jobs=2, backend=backend)(
            [delayed(tasks.raise_keyword_only)(), delayed(tasks.identity)(1)]
        )
