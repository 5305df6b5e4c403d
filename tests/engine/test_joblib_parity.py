"""Public behaviours where a joblib user switching imports sees joblib's behaviour (issue 19).

Each test would fail on the engine as it was before: written from joblib 1.6's documented and
observed behaviour, not copied from its tests."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import time
import warnings
from typing import Any, ClassVar

import engine_tasks as tasks
import pytest
from processes import still_running

from pytest_parproc import (
    Parallel,
    ParallelError,
    TaskTimeoutError,
    UnpicklableTaskError,
    delayed,
    parallel_backend,
    parallel_config,
)


def test_a_timeout_is_caught_as_multiprocessings_timeout_error() -> None:
    with pytest.raises(multiprocessing.TimeoutError) as caught:
        Parallel(n_jobs=2, backend="threading", timeout=0.2)(
            delayed(tasks.sleep_then)(i, 5) for i in range(2)
        )
    assert isinstance(caught.value, TimeoutError)  # the builtin, as before
    assert isinstance(caught.value, (TaskTimeoutError, ParallelError))


def test_a_timeout_with_one_job_warns_and_returns_every_result() -> None:
    with pytest.warns(UserWarning) as caught:
        results = Parallel(n_jobs=1, timeout=0.01)(
            delayed(tasks.sleep_then)(i, 0.05) for i in (7, 8)
        )
    assert results == [7, 8]
    assert [str(w.message) for w in caught] == [
        "The backend class 'SequentialBackend' does not support timeout. You have set "
        "'timeout=0.01' in Parallel but the 'timeout' parameter will not be used."
    ]


def _remember(store: Any, key: str) -> None:
    store[key] = os.getpid()


def _read(store: Any, key: str) -> int:
    return int(store[key])


def test_manager_proxies_work_in_loky_workers_as_arguments_and_initargs() -> None:
    """A spawned worker needs the parent's multiprocessing key for a proxy to connect."""
    with multiprocessing.Manager() as manager:
        store = manager.dict()
        Parallel(n_jobs=2, backend="loky")(delayed(_remember)(store, str(i)) for i in range(4))
        assert len(store) == 4 and os.getpid() not in store.values()
        initialized = manager.dict()
        pids = Parallel(
            n_jobs=2, backend="loky", initializer=_remember, initargs=(initialized, "init")
        )(delayed(_read)(initialized, "init") for _ in range(2))
        assert all(pid != os.getpid() for pid in pids)


@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_backend_parameters_can_be_given_to_parallel(backend: str, tmp_path: Any) -> None:
    marker = tmp_path / "initialized"
    results = Parallel(n_jobs=2, backend=backend, initializer=tasks.touch, initargs=(str(marker),))(
        delayed(tasks.square)(i) for i in range(4)
    )
    assert results == [0, 1, 4, 9]
    assert marker.exists()


def test_backend_parameters_join_those_of_the_context() -> None:
    with parallel_config(backend="loky", idle_worker_timeout=60):
        backend = Parallel(n_jobs=2, max_tasks_per_worker=5).backend
    assert backend._settings.idle_timeout_s == 60.0  # type: ignore[attr-defined]
    assert backend._settings.max_tasks_per_worker == 5  # type: ignore[attr-defined]


def test_unknown_backend_parameters_are_named() -> None:
    with pytest.raises(TypeError, match="backend 'threading' got unexpected parameters: colour"):
        Parallel(n_jobs=2, backend="threading", colour="blue")


def test_a_multiprocessing_context_as_the_backend() -> None:
    context = multiprocessing.get_context("spawn")
    parallel = Parallel(n_jobs=2, backend=context)
    assert parallel.backend.name == "multiprocessing"
    assert parallel(delayed(tasks.square)(i) for i in range(3)) == [0, 1, 4]
    with parallel_config(backend=context):
        assert Parallel(n_jobs=2).backend.name == "multiprocessing"


@pytest.mark.parametrize("bad", [object(), 3])
def test_a_backend_that_is_no_backend_is_a_type_error_naming_it(bad: object) -> None:
    with pytest.raises(TypeError, match=r"backend must be a name .* got .* of type"):
        Parallel(backend=bad)
    with pytest.raises(TypeError, match="parallel_config: backend must be a name"):
        parallel_config(backend=bad)


def test_an_unpicklable_argument_is_a_pickling_error() -> None:
    class Refuses:
        def __reduce__(self) -> Any:
            raise RuntimeError("no pickling here")

    with pytest.raises(pickle.PicklingError, match="the task to send") as caught:
        Parallel(n_jobs=2, backend="loky")(delayed(id)(Refuses()) for _ in range(2))
    assert isinstance(caught.value, UnpicklableTaskError)
    assert "RuntimeError: no pickling here" in str(caught.value)


def test_inner_max_num_threads_needs_a_backend_that_honours_it() -> None:
    with pytest.raises(ValueError, match="only supported when backend is not None"):
        parallel_config(inner_max_num_threads=2)
    with pytest.raises(ValueError, match="only supported when backend is not None"):
        parallel_config(idle_worker_timeout=2)
    for name in ("threading", "multiprocessing"):
        with pytest.raises(ValueError, match="does not accept setting the inner_max_num_threads"):
            parallel_backend(name, inner_max_num_threads=1)
    with parallel_config(backend="loky", inner_max_num_threads=1):
        pass


def test_backend_parameters_with_a_backend_instance_are_refused() -> None:
    from pytest_parproc.parallel.backends.thread_pool import ThreadingBackend

    with pytest.raises(ValueError, match="only supported when backend is a string"):
        parallel_config(backend=ThreadingBackend(), idle_worker_timeout=1)


def _env(name: str) -> str | None:
    return os.environ.get(name)


def test_a_warm_pool_follows_the_callers_thread_limit_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert Parallel(n_jobs=2)(delayed(_env)("OMP_NUM_THREADS") for _ in range(2)) == ["3", "3"]
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert Parallel(n_jobs=2)(delayed(_env)("OMP_NUM_THREADS") for _ in range(2)) == ["4", "4"]
    with parallel_config(backend="loky", inner_max_num_threads=1):
        assert Parallel(n_jobs=2)(delayed(_env)("OMP_NUM_THREADS") for _ in range(2)) == [
            "1",
            "1",
        ]


def _nested(backend: str) -> tuple[int, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inner = Parallel(n_jobs=2, backend=backend)
        inner(delayed(tasks.square)(i) for i in range(3))
    return inner.n_jobs, [str(warning.message) for warning in caught]


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("loky", "loky", (2, [])),
        ("loky", "multiprocessing", (1, ["below loky"])),
        ("multiprocessing", "loky", (1, ["cannot be called in a multiprocessing"])),
        ("threading", "loky", (1, ["Loky-backed parallel loops cannot be nested below threads"])),
        ("threading", "multiprocessing", (1, ["nested below threads"])),
    ],
)
def test_nested_process_backends_get_one_job_and_joblibs_warning(
    outer: str, inner: str, expected: tuple[int, list[str]]
) -> None:
    results = Parallel(n_jobs=2, backend=outer)(delayed(_nested)(inner) for _ in range(2))
    for n_jobs, messages in results:
        assert n_jobs == expected[0]
        assert len(messages) == len(expected[1])
        assert all(part in message for part, message in zip(expected[1], messages, strict=True))


def _nesting_chain(depth: int) -> list[str]:
    parallel = Parallel(n_jobs=2)
    if depth == 0:
        return [parallel.backend.name]
    return [parallel.backend.name, *parallel(delayed(_nesting_chain)(depth - 1) for _ in "a")[0]]


def test_threads_then_plain_loops_below_a_threading_call() -> None:
    with parallel_config(backend="threading", n_jobs=2):
        assert _nesting_chain(3) == ["threading", "threading", "sequential", "sequential"]


class _Counting(Parallel):
    seen: ClassVar[list[tuple[int, int, int | None]]] = []

    def print_progress(self) -> None:
        self.seen.append((self.n_completed_tasks, self.n_dispatched_tasks, self.n_tasks))


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_print_progress_is_the_hook_a_progress_bar_overrides(n_jobs: int) -> None:
    _Counting.seen = []
    _Counting(n_jobs=n_jobs, backend="threading", batch_size=1)(
        delayed(tasks.square)(i) for i in range(5)
    )
    completed = [done for done, _, _ in _Counting.seen]
    assert completed == sorted(completed) and completed[-1] == 5
    assert all(done <= dispatched for done, dispatched, _ in _Counting.seen)
    assert _Counting.seen[-1][2] == 5


def test_verbose_output_goes_to_stdout_from_50_with_joblibs_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Parallel(n_jobs=2, backend="threading", verbose=5)(delayed(tasks.square)(i) for i in range(3))
    early = capsys.readouterr()
    assert early.out == ""
    assert "Using backend ThreadingBackend with 2 concurrent workers." in early.err
    Parallel(n_jobs=1, verbose=60)(delayed(tasks.square)(i) for i in range(3))
    late = capsys.readouterr()
    assert late.err == ""
    assert "Using backend" not in late.out  # joblib's plain loop does not announce itself
    assert "[Parallel(n_jobs=1)]: Done   3 out of   3 | elapsed:" in late.out


def _progress_lines(verbose: int, tasks_in: Any) -> list[str]:
    lines: list[str] = []

    class Recording(Parallel):
        def _print(self, msg: str) -> None:
            lines.append(msg.split("|")[0])

    Recording(n_jobs=1, verbose=verbose)(tasks_in)
    return lines


def test_verbose_lines_follow_joblibs_schedule() -> None:
    """With one job the schedule is joblib's to the line: square-root spaced while reading."""
    listed = [delayed(tasks.square)(i) for i in range(100)]
    assert _progress_lines(5, listed) == [
        "Done  17 out of 100 ",
        "Done  71 out of 100 ",
        "Done 100 out of 100 ",
    ]
    generated = (delayed(tasks.square)(i) for i in range(100))
    assert _progress_lines(1, generated) == ["Done  49 tasks      ", "Done 100 out of 100 "]
    assert len(_progress_lines(11, listed)) == 101


def _log_and_return(log: list[str], value: int) -> int:
    log.append(f"ran {value}")
    return value


def _produce(log: list[str], count: int) -> Any:
    for value in range(count):
        log.append(f"read {value}")
        yield delayed(_log_and_return)(log, value)


def test_one_job_reads_a_fixed_batch_before_running_it() -> None:
    log: list[str] = []
    Parallel(n_jobs=1, batch_size=2)(_produce(log, 3))
    assert log == ["read 0", "read 1", "ran 0", "ran 1", "read 2", "ran 2"]


def test_pre_dispatch_bounds_what_is_read_ahead_with_a_fixed_batch_size() -> None:
    """pre_dispatch=3, batch_size=1: three items read before the first task may end."""
    log: list[str] = []
    Parallel(n_jobs=2, backend="threading", batch_size=1, pre_dispatch=3)(_produce(log, 8))
    assert log[:3] == ["read 0", "read 1", "read 2"]
    for position, entry in enumerate(log):
        if entry.startswith("read "):
            read = sum(item.startswith("read") for item in log[: position + 1])
            ran = sum(item.startswith("ran") for item in log[:position])
            assert read - ran <= 3, log


def _pid_then_sleep(folder: str, index: int) -> int:
    if index > 0:
        with open(os.path.join(folder, str(os.getpid())), "w"):
            pass
        time.sleep(60)
    return index


def test_leaving_the_block_with_an_unconsumed_generator_stops_its_tasks(tmp_path: Any) -> None:
    with (
        pytest.warns(UserWarning, match="its remaining tasks were cancelled"),
        Parallel(n_jobs=2, backend="loky", return_as="generator", batch_size=1) as parallel,
    ):
        results = parallel(delayed(_pid_then_sleep)(str(tmp_path), i) for i in range(10))
        assert next(results) == 0
        while not list(tmp_path.iterdir()):  # a task of the sleeping kind has started
            time.sleep(0.01)
    sleepers = [int(path.name) for path in tmp_path.iterdir()]
    assert not still_running(sleepers), "a task of the abandoned generator still runs"
    assert list(results) == []  # the generator was closed with the block
    assert Parallel(n_jobs=2)(delayed(tasks.square)(i) for i in range(3)) == [0, 1, 4]


def _with_order(array: Any) -> tuple[Any, str, str]:
    return array, array.dtype.byteorder, type(array).__name__


@pytest.mark.parametrize("order", ["<", ">", "="])
def test_a_memmapped_array_comes_back_as_an_array_in_its_byte_order(order: str) -> None:
    np = pytest.importorskip("numpy")
    array = np.arange(6).reshape((2, 3)).astype(f"{order}i4")
    results = Parallel(n_jobs=2, backend="loky", max_nbytes=1)(
        delayed(_with_order)(array) for _ in range(2)
    )
    for returned, order_in_worker, kind_in_worker in results:
        assert kind_in_worker == "memmap"  # it did travel by memmap
        assert order_in_worker == array.dtype.byteorder
        assert type(returned) is np.ndarray
        assert returned.dtype == array.dtype
        np.testing.assert_array_equal(returned, array)


def _level() -> int | None:
    return Parallel(n_jobs=2, backend="threading").backend.nesting_level


def test_a_backend_takes_the_nesting_level_of_where_it_is_called() -> None:
    assert Parallel(n_jobs=2, backend="loky").backend.nesting_level == 0
    assert Parallel(n_jobs=2, backend="threading")(delayed(_level)() for _ in "ab") == [1, 1]


def test_n_jobs_infinity_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="n_jobs could not be converted to int: got inf"):
        Parallel(n_jobs=float("inf"))


@pytest.mark.parametrize("bad", [[2], True, 2.0])
def test_pre_dispatch_of_another_type_is_a_type_error(bad: Any) -> None:
    Parallel(n_jobs=2, pre_dispatch=2)  # (an earlier good value must not change the verdict)
    with pytest.raises(TypeError, match="pre_dispatch must be an int or a string"):
        Parallel(n_jobs=2, pre_dispatch=bad)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_an_unconsumed_generator_at_the_blocks_end_warns_and_the_instance_stays_usable(
    n_jobs: int,
) -> None:
    with (
        pytest.warns(UserWarning, match="not consumed to its end"),
        Parallel(n_jobs=n_jobs, backend="threading", return_as="generator") as parallel,
    ):
        results = parallel(delayed(tasks.square)(i) for i in range(6))
    assert list(results) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a consumed generator gives no warning
        with parallel:
            assert list(parallel(delayed(tasks.square)(i) for i in range(3))) == [0, 1, 4]


def test_a_generator_read_in_another_thread_is_cancelled_with_its_block() -> None:
    outcome: dict[str, Any] = {}

    def read(results: Any) -> None:
        try:
            outcome["values"] = list(results)
        except RuntimeError as error:
            outcome["error"] = str(error)

    import threading

    with (
        pytest.warns(UserWarning, match="not consumed to its end"),
        Parallel(n_jobs=2, backend="threading", return_as="generator", batch_size=1) as p,
    ):
        results = p(delayed(tasks.sleep_then)(i, 0.2) for i in range(50))
        reader = threading.Thread(target=read, args=(results,))
        reader.start()
        while p.n_completed_tasks == 0:
            time.sleep(0.01)
    reader.join(30)
    assert not reader.is_alive()
    assert "cancelled: its `with Parallel(...)` block ended" in outcome.get("error", ""), outcome


def _write_cell(array: Any, index: int) -> Any:
    array[index] = index + 1
    return array


def test_a_memmap_of_the_users_own_file_comes_back_as_that_file(tmp_path: Any) -> None:
    np = pytest.importorskip("numpy")
    path = tmp_path / "data.bin"
    array = np.memmap(path, dtype="float64", mode="w+", shape=(4,))
    array[:] = 0
    array.flush()
    for max_nbytes in ("1M", None):  # by reference either way, as joblib passes them
        array[:] = 0
        array.flush()
        results = Parallel(n_jobs=2, backend="loky", max_nbytes=max_nbytes)(
            delayed(_write_cell)(array, i) for i in range(2)
        )
        assert list(np.memmap(path, dtype="float64", mode="r", shape=(4,))) == [1, 2, 0, 0]
        for returned in results:
            assert isinstance(returned, np.memmap)
            assert str(returned.filename) == str(path)
            assert list(returned) == [1.0, 2.0, 0.0, 0.0]


MANAGER_AFTER_THE_POOL = """
import multiprocessing, sys
from pytest_parproc import Parallel, delayed

def put(store, key):
    store[key] = 1

if __name__ == "__main__":
    assert "multiprocessing.managers" not in sys.modules
    Parallel(n_jobs=2)(delayed(abs)(i) for i in range(4))  # a warm pool, started keyless
    with multiprocessing.Manager() as manager:
        store = manager.dict()
        Parallel(n_jobs=2)(delayed(put)(store, str(i)) for i in range(4))
        print(sorted(store.keys()))
"""


def test_a_manager_made_after_the_pool_started_still_works(tmp_path: Any) -> None:
    """Workers get the key only where a manager can exist: a warm pool started before the
    first one is replaced, not reused with workers that lack it."""
    import subprocess
    import sys

    script = tmp_path / "manager_after.py"
    script.write_text(MANAGER_AFTER_THE_POOL)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['0', '1', '2', '3']"
