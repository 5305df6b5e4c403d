"""A test may start processes of its own with multiprocessing, as in a serial run: the
multiprocessing backend's workers are a pool's daemonic processes, which Python forbids children
("daemonic processes are not allowed to have children": three tests of pytest's own suite)."""

from __future__ import annotations

import pytest
from compare import BACKENDS, assert_same_results, run_suite

pytest_plugins = ["pytester"]

SUITE = """
import multiprocessing

import pytest


def square(x):
    return x * x


def test_a_pool():
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert pool.map(square, [1, 2, 3]) == [1, 4, 9]


@pytest.mark.parametrize("n", range(3))
def test_a_process(n):
    process = multiprocessing.get_context("spawn").Process(target=square, args=(n,))
    process.start()
    process.join()
    assert process.exitcode == 0
"""


@pytest.mark.slow  # starts Python processes in each run
@pytest.mark.parametrize("backend", BACKENDS)
def test_tests_start_processes_as_serially(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(test_children=SUITE)
    serial = run_suite(pytester)
    parallel = run_suite(pytester, n_jobs=2, backend=backend)
    assert_same_results(serial, parallel)
    parallel.result.assert_outcomes(passed=4)
