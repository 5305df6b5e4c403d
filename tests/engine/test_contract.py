"""The contract every backend keeps: results, order, errors, return modes, timeouts, reuse."""

from __future__ import annotations

import inspect
import os
import traceback
from pathlib import Path

import engine_tasks as tasks
import pytest
from processes import still_running
from spies import spy_backend

from pytest_parproc import (
    Parallel,
    RemoteTraceback,
    TaskTimeoutError,
    UnpicklableTaskError,
    delayed,
)

PROCESS = {"loky", "multiprocessing", "dask"}


def test_results_come_back_in_submission_order(backend: str) -> None:
    results = Parallel(n_jobs=2, backend=backend)(delayed(tasks.square)(i) for i in range(200))
    assert results == [i * i for i in range(200)]


def test_keyword_arguments_lambdas_and_closures(backend: str) -> None:
    offset = 10
    assert Parallel(n_jobs=2, backend=backend)(
        delayed(lambda x, y=0: x + y + offset)(i, y=1) for i in range(5)
    ) == [11, 12, 13, 14, 15]
    assert Parallel(n_jobs=2, backend=backend)(
        delayed(tasks.add)(i, right=i) for i in range(4)
    ) == [0, 2, 4, 6]


def test_empty_and_unsized_inputs(backend: str) -> None:
    assert Parallel(n_jobs=2, backend=backend)([]) == []
    unsized = (delayed(tasks.square)(i) for i in range(7) if i % 2)
    assert Parallel(n_jobs=2, backend=backend)(unsized) == [1, 9, 25]


def test_generator_yields_in_submission_order(backend: str, tmp_path: Path) -> None:
    flag = str(tmp_path / "flag")
    calls = [delayed(tasks.wait_for_file)(0, flag)]
    calls += [delayed(tasks.identity)(i) for i in (1, 2)]
    calls += [delayed(tasks.create_file)(3, flag)]
    if backend == "sequential":
        calls = calls[1:] + calls[:1]  # a plain loop runs in order: create the file first
    output = Parallel(n_jobs=2, backend=backend, return_as="generator", batch_size=1)(calls)
    assert inspect.isgenerator(output)
    expected = [1, 2, 3, 0] if backend == "sequential" else [0, 1, 2, 3]
    assert list(output) == expected


def test_generator_unordered_yields_in_completion_order(
    parallel_backend_name: str, tmp_path: Path
) -> None:
    flag = tmp_path / "flag"
    calls = [delayed(tasks.wait_for_file)(0, str(flag))]
    calls += [delayed(tasks.identity)(i) for i in (1, 2, 3)]
    output = Parallel(
        n_jobs=2,
        backend=parallel_backend_name,
        return_as="generator_unordered",
        batch_size=1,
        pre_dispatch="all",
    )(calls)
    results = []
    for value in output:
        results.append(value)
        if len(results) == 3:
            flag.write_text("x")  # only now can task 0 finish: it must come last
    assert results[-1] == 0
    assert sorted(results) == [0, 1, 2, 3]


def test_task_error_keeps_its_type_and_worker_traceback(backend: str) -> None:
    with pytest.raises(ValueError, match="bad value 13") as caught:
        Parallel(n_jobs=2, backend=backend)(delayed(tasks.fail_on)(i, 13) for i in range(40))
    if backend in PROCESS:
        cause = caught.value.__cause__
        assert isinstance(cause, RemoteTraceback)
        assert "fail_on" in cause.traceback_text
        assert "ValueError: bad value 13" in cause.traceback_text
    else:
        frames = traceback.extract_tb(caught.value.__traceback__)
        assert any(frame.name == "fail_on" for frame in frames)


def test_error_in_a_generator_is_raised_on_iteration(backend: str) -> None:
    output = Parallel(n_jobs=2, backend=backend, return_as="generator")(
        delayed(tasks.fail_on)(i, 3) for i in range(6)
    )
    seen = []
    with pytest.raises(ValueError, match="bad value 3"):
        for value in output:
            seen.append(value)
    assert seen == [0, 1, 2][: len(seen)]


def test_the_pool_works_after_an_error(backend: str) -> None:
    with pytest.raises(ValueError):
        Parallel(n_jobs=2, backend=backend)(delayed(tasks.fail_on)(i, 0) for i in range(10))
    assert Parallel(n_jobs=2, backend=backend)(delayed(tasks.square)(i) for i in range(5)) == [
        0,
        1,
        4,
        9,
        16,
    ]


@pytest.mark.slow
def test_timeout_raises_timeout_error(backend: str) -> None:
    if backend == "sequential":
        pytest.skip("a plain loop cannot stop a task: it warns (test_joblib_parity)")
    seconds = 30.0
    with pytest.raises(TaskTimeoutError) as caught:
        Parallel(n_jobs=2, backend=backend, timeout=0.3)(
            delayed(tasks.sleep_then)(i, seconds if i == 2 else 0) for i in range(4)
        )
    assert isinstance(caught.value, TimeoutError)
    assert "0.3 s" in str(caught.value)
    assert "sleep_then" in str(caught.value)


@pytest.mark.slow
def test_timeout_stops_the_running_process_and_its_children(
    process_backend: str, tmp_path: Path
) -> None:
    record = tmp_path / "pids"
    with pytest.raises(TaskTimeoutError):
        Parallel(n_jobs=2, backend=process_backend, timeout=1.0)(
            [delayed(tasks.record_pid_and_sleep)(str(record), 60)]
        )
    worker_pid, child_pid = map(int, record.read_text().split())
    assert not still_running([worker_pid, child_pid]), "the timed-out worker or its child runs"


def test_nested_calls_fall_back_to_a_safe_backend(backend: str) -> None:
    """joblib's rule: threads at the first level of nesting, plain loops below."""
    results = Parallel(n_jobs=2, backend=backend)(delayed(tasks.nested_sum)(n) for n in (3, 4))
    assert [total for total, _ in results] == [5, 14]
    inner = {name for _, name in results}
    expected = {
        "loky": {"threading"},
        "multiprocessing": {"threading"},
        "threading": {"threading"},
        "sequential": {"loky"},
        "dask": {"threading"},
    }[backend]
    assert inner == expected


def test_context_manager_reuses_the_same_workers(parallel_backend_name: str) -> None:
    with Parallel(n_jobs=2, backend=parallel_backend_name, batch_size=1) as parallel:
        first = parallel(delayed(tasks.worker_identity)(i) for i in range(20))
        second = parallel(delayed(tasks.worker_identity)(i) for i in range(20))
    index = 1 if parallel_backend_name == "threading" else 0
    # Two workers served both calls: no worker was started for the second one.
    assert len({ident[index] for ident in first + second}) <= 2


def test_fixed_batch_size_keeps_a_batch_on_one_worker(backend: str) -> None:
    spy, sizes, _ = spy_backend(backend)
    results = Parallel(n_jobs=2, backend=spy, batch_size=5)(
        delayed(tasks.worker_identity)(i) for i in range(20)
    )
    if backend != "sequential":
        assert sizes == [5, 5, 5, 5]
    for start in range(0, 20, 5):
        assert len(set(results[start : start + 5])) == 1


def test_auto_batching_groups_small_tasks(parallel_backend_name: str) -> None:
    spy, sizes, _ = spy_backend(parallel_backend_name)
    results = Parallel(n_jobs=2, backend=spy)(delayed(tasks.square)(i) for i in range(3000))
    assert results == [i * i for i in range(3000)]
    assert sizes[0] == 1, "auto batching starts with single tasks"
    assert max(sizes) > 8, f"batches never grew: {sizes}"
    assert len(sizes) < 3000 / 4


def test_pre_dispatch_bounds_the_batches_in_flight(parallel_backend_name: str) -> None:
    spy, _, in_flight = spy_backend(parallel_backend_name)
    Parallel(n_jobs=2, backend=spy, pre_dispatch=3, batch_size=1)(
        delayed(tasks.sleep_then)(i, 0.001) for i in range(30)
    )
    assert max(in_flight) <= 3


def test_pre_dispatch_all_sends_everything_at_once(parallel_backend_name: str) -> None:
    spy, _, in_flight = spy_backend(parallel_backend_name)
    Parallel(n_jobs=2, backend=spy, pre_dispatch="all", batch_size=1)(
        delayed(tasks.sleep_then)(i, 0.05) for i in range(12)
    )
    assert max(in_flight) >= 10


def test_items_that_are_not_delayed_calls_are_refused(backend: str) -> None:
    with pytest.raises(TypeError, match="item 1 of the input is 5"):
        Parallel(n_jobs=2, backend=backend)([delayed(tasks.square)(1), 5])


def test_an_argument_that_cannot_be_pickled_is_named(process_backend: str) -> None:
    with pytest.raises(UnpicklableTaskError, match=r"task 0 \(identity\)"):
        Parallel(n_jobs=2, backend=process_backend)([delayed(tasks.identity)(x for x in range(3))])


def test_a_result_that_cannot_be_pickled_is_reported(process_backend: str) -> None:
    with pytest.raises(UnpicklableTaskError, match="could not be sent back"):
        Parallel(n_jobs=2, backend=process_backend)([delayed(tasks.return_lock)()])


def test_an_exception_that_cannot_be_pickled_keeps_its_message(process_backend: str) -> None:
    with pytest.raises(UnpicklableTaskError, match="cannot travel") as caught:
        Parallel(n_jobs=2, backend=process_backend)([delayed(tasks.raise_unpicklable)()])
    assert "raise_unpicklable" in str(caught.value.__cause__)


def test_sys_exit_in_a_task_is_an_error_not_a_dead_worker(backend: str) -> None:
    with pytest.raises(SystemExit):
        Parallel(n_jobs=2, backend=backend)(delayed(tasks.die)(i, "sys.exit", 1) for i in range(3))


def test_one_instance_cannot_run_two_calls_at_once(parallel_backend_name: str) -> None:
    parallel = Parallel(n_jobs=2, backend=parallel_backend_name, return_as="generator")
    output = parallel(delayed(tasks.square)(i) for i in range(10))
    with pytest.raises(RuntimeError, match="This Parallel instance is already running"):
        parallel(delayed(tasks.square)(i) for i in range(10))
    assert list(output) == [i * i for i in range(10)]
    assert parallel(delayed(tasks.square)(i) for i in range(3)) is not None


def test_verbose_prints_progress_on_stderr(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Parallel(n_jobs=2, backend=backend, verbose=10)(delayed(tasks.square)(i) for i in range(20))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "[Parallel(n_jobs=" in captured.err
    assert "Done" in captured.err
    assert "finished" in captured.err


def test_n_jobs_one_runs_in_the_caller(backend: str) -> None:
    results = Parallel(n_jobs=1, backend=backend)(delayed(tasks.worker_identity)() for _ in "ab")
    assert {pid for pid, _ in results} == {os.getpid()}
