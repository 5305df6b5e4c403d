"""pytest-benchmark beside the plugin: benchmarks are timed alone, after the parallel part, in
the main process (or the serial lane on threads), and the table and ``--benchmark-json`` hold
what a serial run's hold, on every backend and start mode (pytest-xdist turns them off)."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("pytest_benchmark", reason="the [plugins] extra: tox -e plugins installs it")

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

TESTS = """
import os
import threading

import pytest

def where():
    return os.environ.get("PYTEST_XDIST_WORKER", "main"), threading.current_thread().name

@pytest.mark.parametrize("size", [10, 100])
def test_sum(benchmark, size):
    benchmark.extra_info["where"] = where()
    assert benchmark(sum, range(size)) == sum(range(size))

def test_sorted(benchmark):
    benchmark.extra_info["where"] = where()
    benchmark.pedantic(sorted, args=([3, 1, 2],), rounds=5, iterations=2)

@pytest.mark.parametrize("n", range(6))
def test_plain(n):
    pass
"""

MODES = {
    "loky-fork": ("--n-jobs=2",),
    "loky-collect": ("--n-jobs=2", "--par-start=collect"),
    "multiprocessing": ("--n-jobs=2", "--par-backend=multiprocessing"),
    "threading": ("--n-jobs=2", "--par-backend=threading"),
}


def benchmarks(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, Any], str]:
    path = pytester.path / "bench.json"
    path.unlink(missing_ok=True)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--benchmark-json={path}", *args, timeout=180
    )
    result.assert_outcomes(passed=9)
    found = {
        entry["fullname"]: {
            "where": entry["extra_info"]["where"],
            "rounds": entry["stats"]["rounds"] if entry["name"] == "test_sorted" else None,
            "timed": entry["stats"]["min"] > 0,
        }
        for entry in json.loads(path.read_text())["benchmarks"]
    }
    return found, result.stdout.str()


@pytest.mark.parametrize("mode", list(MODES))
def test_benchmarks_are_timed_alone_and_written(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_suite=TESTS)
    serial, serial_output = benchmarks(pytester)
    assert len(serial) == 3 and "benchmark: 3 tests" in serial_output
    found, output = benchmarks(pytester, *MODES[mode])
    # the same benchmarks, timed, in the main process's main thread, as serially
    assert found == serial
    assert {entry["where"][0] for entry in found.values()} == {"main"}
    assert "benchmark: 3 tests" in output
    assert "automatically disabled" not in output
    if mode == "loky-fork":
        # the main process's row (the benchmarks) is no worker that failed to fork
        assert "start-up: workers forked after collection took over its session" in output


def test_disabled_benchmarks_run_with_the_others(pytester: pytest.Pytester) -> None:
    """``--benchmark-disable`` times nothing: the tests run once, in the workers."""
    pytester.makepyfile(
        test_suite="""
        import os

        def test_once(benchmark):
            assert benchmark(sum, [1, 2]) == 3
            assert "PYTEST_XDIST_WORKER" in os.environ

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--benchmark-disable", "--n-jobs=2", timeout=120
    )
    result.assert_outcomes(passed=2)
