"""xunit-style setup/teardown, unittest.TestCase (setUpClass included) and doctests, as in a
serial run."""

from __future__ import annotations

import pytest
from compare import (
    PROCESS_BACKENDS,
    assert_balanced_fixtures,
    assert_same_results,
    copy_suite,
    run_suite,
    serial_run,
    setups,
)

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_xunit_suite_matches_serial(pytester: pytest.Pytester, backend: str) -> None:
    copy_suite(pytester, "xunit")
    serial = serial_run(pytester, "xunit")
    parallel = run_suite(pytester, n_jobs=2, backend=backend)
    assert_same_results(serial, parallel)
    assert "doctests.double" in " ".join(serial.tests)  # the doctests were collected
    assert serial.tests["doctests.py::doctests.double"] == [
        "setup:passed",
        "call:failed",
        "teardown:passed",
    ]
    assert_balanced_fixtures(parallel)
    for name in ("xunit_module", "xunit_class", "unittest_class"):
        assert sum(setups(parallel, name).values()) == 1, name
