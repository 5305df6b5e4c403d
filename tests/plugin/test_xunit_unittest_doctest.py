"""xunit-style setup/teardown, unittest.TestCase (setUpClass included) and doctests, as in a
serial run."""

from __future__ import annotations

import pytest
from compare import (
    BACKENDS,
    assert_balanced_fixtures,
    assert_same_results,
    copy_suite,
    run_suite,
    serial_run,
    setups,
)

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow
def test_xunit_and_unittest_match_serial(pytester: pytest.Pytester, backend: str) -> None:
    copy_suite(pytester, "xunit")
    args = ("test_xunit.py", "test_unittest.py")
    serial = serial_run(pytester, "xunit", *args)
    parallel = run_suite(pytester, *args, n_jobs=2, backend=backend)
    assert_same_results(serial, parallel)
    assert_balanced_fixtures(parallel)
    for name in ("xunit_module", "xunit_class"):
        assert sum(setups(parallel, name).values()) == sum(setups(serial, name).values()) == 1
    # The unittest module holds 6 of the 10 tests, more than a worker's share: it is cut in two
    # chunks of 3, and setUpClass runs once per chunk.
    assert sum(setups(serial, "unittest_class").values()) == 1
    assert 1 <= sum(setups(parallel, "unittest_class").values()) <= 2


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow
def test_doctests_match_serial(pytester: pytest.Pytester, backend: str) -> None:
    # Module doctests run on their own: pytest 8.0 runs setup_module/setup_function of a module
    # that --doctest-modules also imports inconsistently (serially too).
    copy_suite(pytester, "xunit")
    args = ("--doctest-modules", "doctests.py", "test_doctests.txt")
    serial = serial_run(pytester, "xunit", *args)
    parallel = run_suite(pytester, *args, n_jobs=2, backend=backend)
    assert_same_results(serial, parallel)
    assert serial.tests["doctests.py::doctests.double"] == [
        "setup:passed",
        "call:failed",
        "teardown:passed",
    ]
    assert serial.tests["test_doctests.txt::test_doctests.txt"][1] == "call:failed"
