"""Fixtures of every scope, yield fixtures and finalizers, autouse and parametrized fixtures,
conftest files at several levels with their hooks, teardown errors: as in a serial run."""

from __future__ import annotations

from collections import Counter

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
@pytest.mark.slow
def test_fixture_suite_matches_serial(pytester: pytest.Pytester, backend: str) -> None:
    copy_suite(pytester, "fixtures")
    serial = serial_run(pytester, "fixtures")
    parallel = run_suite(pytester, n_jobs=2, backend=backend)
    assert serial.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert_same_results(serial, parallel)
    assert_balanced_fixtures(serial)
    assert_balanced_fixtures(parallel)
    # At most one session fixture per worker, and used by more than one test.
    assert sum(setups(serial, "session_resource").values()) == 1
    assert all(count == 1 for count in setups(parallel, "session_resource").values())
    assert len(setups(parallel, "session_resource")) <= 2
    # test_scopes holds more than a worker's share of the tests (11 of 18): it is split in
    # chunks of 5, and a module fixture is set up at most once per chunk.
    assert sum(setups(serial, "module_resource:test_scopes").values()) == 1
    assert 1 <= sum(setups(parallel, "module_resource:test_scopes").values()) <= 3
    # The package fixture covers two modules; each worker that runs them sets it up once.
    assert all(count == 1 for count in setups(parallel, "package_resource").values())
    assert "module teardown fails on purpose" in parallel.output


def test_fixture_suite_on_threads_sets_up_as_serial(pytester: pytest.Pytester) -> None:
    copy_suite(pytester, "fixtures")
    serial = serial_run(pytester, "fixtures")
    parallel = run_suite(pytester, n_jobs=4, backend="threading")
    assert_same_results(serial, parallel)
    # One process: every fixture wider than a function is set up (and torn down) exactly as
    # often as serially, and never twice at once; a function fixture once more for each test
    # whose call failed on a thread and ran again alone (confirmed: two fail on purpose).
    confirmed = 2
    expected = Counter(event for event, _ in serial.events)
    expected.update({"setup every_test": confirmed, "teardown every_test": confirmed})
    assert Counter(event for event, _ in parallel.events) == expected
    assert f"parproc: {confirmed} failed on a thread and again alone" in parallel.output
    assert_balanced_fixtures(parallel, concurrent=("every_test", "database:"))
    assert "module teardown fails on purpose" in parallel.output
