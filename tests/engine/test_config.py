"""Call settings: n_jobs resolution, pre_dispatch, parallel_config, backend choice, validation."""

from __future__ import annotations

from typing import Any

import engine_tasks as tasks
import pytest

from pytest_parproc import (
    Parallel,
    cpu_count,
    delayed,
    effective_n_jobs,
    parallel_backend,
    parallel_config,
    register_parallel_backend,
)
from pytest_parproc.parallel.backends.thread_pool import ThreadingBackend
from pytest_parproc.parallel.config import parse_pre_dispatch, resolve_n_jobs


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_PARPROC_MAX_CPUS", "4")
    monkeypatch.delenv("LOKY_MAX_CPU_COUNT", raising=False)
    assert cpu_count() <= 4


@pytest.mark.parametrize(
    ("n_jobs", "expected"), [(None, 1), (1, 1), (3, 3), (-1, "all"), (-2, "all-1"), (-100, 1)]
)
def test_n_jobs_resolution(four_cpus: None, n_jobs: int | None, expected: Any) -> None:
    cpus = cpu_count()
    wanted = {"all": cpus, "all-1": max(1, cpus - 1)}.get(expected, expected)
    assert resolve_n_jobs(n_jobs) == wanted


def test_n_jobs_none_takes_the_context_value() -> None:
    with parallel_config(n_jobs=3):
        assert resolve_n_jobs(None) == 3
        assert Parallel(backend="threading").n_jobs == 3
    assert resolve_n_jobs(None) == 1


@pytest.mark.parametrize("zero", [0, 0.5, "0", False])
def test_n_jobs_zero_is_a_value_error(zero: Any) -> None:
    with pytest.raises(ValueError, match="n_jobs == 0 in Parallel has no meaning"):
        Parallel(n_jobs=zero)


@pytest.mark.parametrize(("given", "expected"), [("2", 2), (2.7, 2), (True, 1), ("-1", "all")])
def test_n_jobs_is_converted_with_int_as_in_joblib(given: Any, expected: Any) -> None:
    wanted = cpu_count() if expected == "all" else expected
    assert Parallel(n_jobs=given, backend="threading").n_jobs == wanted


@pytest.mark.parametrize("bad", ["2.3", "two"])
def test_n_jobs_that_int_cannot_read_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="n_jobs could not be converted to int: got '"):
        Parallel(n_jobs=bad)


def test_n_jobs_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"n_jobs must be an int.*got \[2\] of type list"):
        Parallel(n_jobs=[2])


def test_n_jobs_accepts_integer_like_objects() -> None:
    np = pytest.importorskip("numpy")
    assert Parallel(n_jobs=np.int64(2), backend="threading").n_jobs == 2


@pytest.mark.parametrize(
    ("text", "n_jobs", "expected"),
    [
        ("2 * n_jobs", 3, 6),
        ("all", 3, None),
        ("n_jobs + 3", 2, 5),
        ("n_jobs // 2", 5, 2),
        ("3*n_jobs - 1", 2, 5),
        (7, 2, 7),
        ("0 * n_jobs", 4, 1),
    ],
)
def test_pre_dispatch_expressions(text: Any, n_jobs: int, expected: int | None) -> None:
    assert parse_pre_dispatch(text, n_jobs) == expected


@pytest.mark.parametrize(
    "bad", ["__import__('os').system('true')", "n_jobs ** 2", "open('x')", "n_jobs +", "cpus"]
)
def test_pre_dispatch_is_parsed_never_evaluated(bad: str) -> None:
    with pytest.raises(ValueError, match="pre_dispatch"):
        parse_pre_dispatch(bad, 2)


@pytest.mark.parametrize("bad", [0, -3])
def test_pre_dispatch_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Parallel(n_jobs=2, pre_dispatch=bad)


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="Invalid backend: ray, expected one of") as caught:
        Parallel(n_jobs=2, backend="ray")
    for name in ("loky", "multiprocessing", "threading", "sequential", "dask"):
        assert repr(name) in str(caught.value)


def test_default_backend_is_loky() -> None:
    assert Parallel(n_jobs=2).backend.name == "loky"


def test_prefer_threads_is_a_soft_hint() -> None:
    assert Parallel(n_jobs=2, prefer="threads").backend.name == "threading"
    assert Parallel(n_jobs=2, prefer="threads", backend="loky").backend.name == "loky"
    with parallel_config(backend="multiprocessing"):
        assert Parallel(n_jobs=2, prefer="threads").backend.name == "multiprocessing"


def test_require_sharedmem_is_a_hard_constraint() -> None:
    assert Parallel(n_jobs=2, require="sharedmem").backend.name == "threading"
    with parallel_config(backend="loky"):
        assert Parallel(n_jobs=2, require="sharedmem").backend.name == "threading"
    with pytest.raises(ValueError, match="'loky' does not support shared memory"):
        Parallel(n_jobs=2, backend="loky", require="sharedmem")


def test_threads_forced_by_sharedmem_do_not_take_the_contexts_n_jobs() -> None:
    """As joblib: the context's n_jobs was meant for its (process) backend; the threads that
    replace it get one job unless the call asks for more."""
    with parallel_config(backend="loky", n_jobs=2):
        forced = Parallel(require="sharedmem")
        assert (forced.backend.name, forced.n_jobs) == ("threading", 1)
        assert Parallel(n_jobs=3, require="sharedmem").n_jobs == 3
        assert Parallel().n_jobs == 2
    with parallel_config(backend="threading", n_jobs=2):
        assert Parallel(require="sharedmem").n_jobs == 2  # the context's own threads


def test_prefer_processes_with_sharedmem_is_inconsistent() -> None:
    with pytest.raises(ValueError, match="prefer == 'processes' and require == 'sharedmem'"):
        Parallel(prefer="processes", require="sharedmem")
    with pytest.raises(ValueError, match="parallel_config: prefer == 'processes'"):
        parallel_config(prefer="processes", require="sharedmem")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"prefer": "gpus"}, "Parallel: prefer=gpus is not a valid backend hint"),
        ({"require": "speed"}, "Parallel: require=speed is not a valid backend constraint"),
        ({"return_as": "tuple"}, "return_as='tuple'"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "big"}, "batch_size"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"crash_policy": "ignore"}, "crash_policy='ignore'"),
    ],
)
def test_bad_arguments_are_named(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Parallel(n_jobs=2, **arguments)


def test_isolate_needs_a_backend_that_can_tell_which_task_died() -> None:
    with pytest.raises(ValueError, match="'multiprocessing'"):
        Parallel(n_jobs=2, backend="multiprocessing", crash_policy="isolate")


def test_parallel_config_nests_and_restores() -> None:
    with parallel_config(backend="threading", n_jobs=2, verbose=0):
        assert Parallel().backend.name == "threading"
        with parallel_config(n_jobs=3):
            parallel = Parallel()
            assert (parallel.backend.name, parallel.n_jobs) == ("threading", 3)
        assert Parallel().n_jobs == 2
    assert Parallel().n_jobs == 1


def test_parallel_config_unregister() -> None:
    config = parallel_config(backend="threading", n_jobs=2)
    assert Parallel().backend.name == "threading"
    config.unregister()
    assert Parallel(n_jobs=2).backend.name == "loky"


def test_parallel_backend_defaults_to_all_cpus(four_cpus: None) -> None:
    with parallel_backend("threading"):
        parallel = Parallel()
        assert (parallel.backend.name, parallel.n_jobs) == ("threading", cpu_count())


def test_parallel_config_passes_backend_parameters_and_checks_them() -> None:
    with parallel_config(backend="loky", idle_worker_timeout=60):
        backend = Parallel(n_jobs=2).backend
        assert backend._settings.idle_timeout_s == 60.0  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="unexpected parameters: colour"):
        parallel_config(backend="loky", colour="blue")


def test_parallel_config_validates_eagerly() -> None:
    with pytest.raises(ValueError, match="parallel_config: n_jobs == 0"):
        parallel_config(n_jobs=0)
    with pytest.raises(ValueError, match="Invalid backend: nope, expected one of"):
        parallel_config(backend="nope")


def test_register_a_third_party_backend(restore_registry: None) -> None:
    class CountingBackend(ThreadingBackend):
        submitted = 0

        def submit(self, batch: Any, on_done: Any) -> None:
            CountingBackend.submitted += 1
            super().submit(batch, on_done)

    register_parallel_backend("counting", CountingBackend)
    assert Parallel(n_jobs=2, backend="counting")(delayed(tasks.square)(i) for i in range(5)) == [
        0,
        1,
        4,
        9,
        16,
    ]
    assert CountingBackend.submitted > 0
    register_parallel_backend("counting", CountingBackend, make_default=True)
    assert Parallel(n_jobs=2).backend.name == "threading"  # the class keeps its own name
    assert isinstance(Parallel(n_jobs=2).backend, CountingBackend)


def test_a_factory_must_return_a_backend(restore_registry: None) -> None:
    register_parallel_backend("broken", lambda **_: object())
    with pytest.raises(TypeError, match="not a ParallelBackendBase"):
        Parallel(n_jobs=2, backend="broken")
    with pytest.raises(TypeError, match="not callable"):
        register_parallel_backend("worse", 42)  # type: ignore[arg-type]


def test_effective_n_jobs(four_cpus: None) -> None:
    assert effective_n_jobs(1) == 1
    assert effective_n_jobs(-1) == cpu_count()
    with parallel_config(backend="sequential"):
        assert effective_n_jobs(4) == 1


def test_a_backend_instance_can_be_passed() -> None:
    backend = ThreadingBackend()
    parallel = Parallel(n_jobs=2, backend=backend)
    assert parallel.backend is backend
    assert parallel(delayed(tasks.square)(i) for i in range(3)) == [0, 1, 4]
