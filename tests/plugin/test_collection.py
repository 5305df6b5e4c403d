"""Collection happens once, in the main process: -k, -m, --deselect, --lf, --ff, collection
errors and --collect-only behave as in a serial run."""

from __future__ import annotations

import pytest
from compare import BACKENDS, assert_same_results, copy_suite, run_suite

pytest_plugins = ["pytester"]

SELECTIONS = {
    "keyword": ("-k", "alpha or delta"),
    "marker": ("-m", "smoke"),
    "deselect": ("--deselect", "test_selection.py::test_beta", "--deselect", "test_other.py"),
    "node ids": ("test_selection.py::test_delta", "test_other.py::test_other_two"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("selection", list(SELECTIONS))
@pytest.mark.slow
def test_selection_matches_serial(pytester: pytest.Pytester, backend: str, selection: str) -> None:
    copy_suite(pytester, "collection")
    args = SELECTIONS[selection]
    serial = run_suite(pytester, *args)
    parallel = run_suite(pytester, *args, n_jobs=2, backend=backend)
    assert serial.tests, serial.output
    assert_same_results(serial, parallel)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow
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


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow
def test_collection_errors(pytester: pytest.Pytester, backend: str) -> None:
    copy_suite(pytester, "collection")
    pytester.path.joinpath("test_broken.py").write_text("raise ImportError('broken on purpose')\n")
    for extra in ((), ("--continue-on-collection-errors",)):
        serial = run_suite(pytester, *extra)
        parallel = run_suite(pytester, *extra, n_jobs=2, backend=backend)
        assert_same_results(serial, parallel)
        assert "broken on purpose" in parallel.output
    assert parallel.exitstatus == 1 and serial.exitstatus == 1


@pytest.mark.slow
def test_collect_only_runs_nothing(pytester: pytest.Pytester) -> None:
    copy_suite(pytester, "collection")
    serial = run_suite(pytester, "--collect-only", "-q")
    parallel = run_suite(pytester, "--collect-only", "-q", n_jobs=2, backend="loky")
    assert parallel.exitstatus == serial.exitstatus == 0
    assert parallel.tests == {} == serial.tests
    assert "test_selection.py::test_delta[3]" in parallel.output
    assert "parproc" not in parallel.output.replace("parproc-", "")


@pytest.mark.parametrize("backend", BACKENDS)
def test_parameter_ids_that_differ_in_each_process(pytester: pytest.Pytester, backend: str) -> None:
    # Ids built from values of the moment (here the process id; datetime.now() in real suites)
    # differ in every worker: the tests are found by their place in the parametrization and
    # reported under the main process's ids.
    pytester.makepyfile(
        test_ids="""
        import os
        import pytest

        @pytest.mark.parametrize("pid", [os.getpid(), os.getpid() + 1])
        @pytest.mark.parametrize("n", [1, 2])
        def test_moment(pid, n):
            assert n in (1, 2)

        @pytest.mark.parametrize("pid", [os.getpid()])
        def test_fails(pid):
            assert False
        """,
        test_other="def test_x():\n    pass\n",
    )
    run = run_suite(pytester, "-p", "no:cacheprovider", n_jobs=2, backend=backend)
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED, run.output
    assert "did not collect" not in run.output
    assert len(run.tests) == 6
    failing = [nodeid for nodeid, phases in run.tests.items() if "call:failed" in phases]
    assert len(failing) == 1 and failing[0].startswith("test_ids.py::test_fails[")
    assert all(
        phases[1] == "call:passed" for nodeid, phases in run.tests.items() if nodeid != failing[0]
    ), run.tests
    assert set(run.junit) == {nodeid.replace(".py::", "::") for nodeid in run.tests}
