"""Collection happens once, in the main process: -k, -m, --deselect, --lf, --ff, collection
errors and --collect-only behave as in a serial run."""

from __future__ import annotations

import pytest
from compare import PROCESS_BACKENDS, assert_same_results, copy_suite, run_suite

pytest_plugins = ["pytester"]

SELECTIONS = {
    "keyword": ("-k", "alpha or delta"),
    "marker": ("-m", "smoke"),
    "deselect": ("--deselect", "test_selection.py::test_beta", "--deselect", "test_other.py"),
    "node ids": ("test_selection.py::test_delta", "test_other.py::test_other_two"),
}


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
@pytest.mark.parametrize("selection", list(SELECTIONS))
def test_selection_matches_serial(pytester: pytest.Pytester, backend: str, selection: str) -> None:
    copy_suite(pytester, "collection")
    args = SELECTIONS[selection]
    serial = run_suite(pytester, *args)
    parallel = run_suite(pytester, *args, n_jobs=2, backend=backend)
    assert serial.tests, serial.output
    assert_same_results(serial, parallel)


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_last_failed_and_failed_first(pytester: pytest.Pytester, backend: str) -> None:
    copy_suite(pytester, "collection")
    first = run_suite(pytester, n_jobs=2, backend=backend)
    assert first.exitstatus == 1
    # The main process wrote the cache from the replayed reports: --lf reruns the failures.
    last_failed = run_suite(pytester, "--lf", n_jobs=2, backend=backend)
    assert sorted(last_failed.tests) == [
        "test_selection.py::test_beta",
        "test_selection.py::test_delta[2]",
    ]
    serial_last_failed = run_suite(pytester, "--lf")
    assert_same_results(serial_last_failed, last_failed)
    failed_first = run_suite(pytester, "--ff", "-v", n_jobs=2, backend=backend)
    assert len(failed_first.tests) == 8
    assert "run-last-failure: rerun previous 2 failures first" in failed_first.output


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_collection_errors(pytester: pytest.Pytester, backend: str) -> None:
    copy_suite(pytester, "collection")
    pytester.path.joinpath("test_broken.py").write_text("raise ImportError('broken on purpose')\n")
    for extra in ((), ("--continue-on-collection-errors",)):
        serial = run_suite(pytester, *extra)
        parallel = run_suite(pytester, *extra, n_jobs=2, backend=backend)
        assert_same_results(serial, parallel)
        assert "broken on purpose" in parallel.output
    assert parallel.exitstatus == 1 and serial.exitstatus == 1


def test_collect_only_runs_nothing(pytester: pytest.Pytester) -> None:
    copy_suite(pytester, "collection")
    serial = run_suite(pytester, "--collect-only", "-q")
    parallel = run_suite(pytester, "--collect-only", "-q", n_jobs=2, backend="loky")
    assert parallel.exitstatus == serial.exitstatus == 0
    assert parallel.tests == {} == serial.tests
    assert "test_selection.py::test_delta[3]" in parallel.output
    assert "parproc" not in parallel.output.replace("parproc-", "")
