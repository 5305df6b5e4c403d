"""Start-up: process workers forked after collection take over the main process's session
(no second collection), keep their output, temporary paths and report files apart, and fall
back to collecting for themselves where forking is not safe or not wanted."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest
from compare import DASK, PROCESS_BACKENDS, assert_same_results, copy_suite, run_suite, serial_run

pytest_plugins = ["pytester"]

COLLECTION_SPY = textwrap.dedent(
    """
    import os

    def pytest_collection_finish(session):
        with open(os.environ["SPY_FILE"], "a") as spy:
            spy.write(f"{os.getpid()}\\n")
    """
)

PRINTING_TESTS = textwrap.dedent(
    """
    import pytest

    @pytest.mark.parametrize("n", range(40))
    def test_prints_its_own_id(n):
        for _ in range(50):
            print(f"output of case {n};")
        assert False
    """
)


def collections(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, set[int]]:
    pytester.makeconftest(COLLECTION_SPY)
    pytester.makepyfile(test_a="def test_a():\n    pass\n", test_b="def test_b():\n    pass\n")
    spy = pytester.path / "spy.txt"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPY_FILE", str(spy))
        result = pytester.runpytest_subprocess("--n-jobs=2", *args)
    return result, {int(line) for line in spy.read_text().split()}


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_forked_workers_do_not_collect_again(pytester: pytest.Pytester, backend: str) -> None:
    result, pids = collections(pytester, f"--par-backend={backend}", "-v")
    result.assert_outcomes(passed=2)
    assert len(pids) == 1, "only the main process collected"
    if backend == "loky":
        result.stdout.fnmatch_lines(["start-up: workers forked after collection*"])


@pytest.mark.slow
def test_par_start_collect_makes_every_worker_collect(pytester: pytest.Pytester) -> None:
    result, pids = collections(pytester, "--par-start=collect", "-v")
    result.assert_outcomes(passed=2)
    assert len(pids) == 3, "the main process and both workers collected"
    result.stdout.fnmatch_lines(["start-up: workers collected the tests themselves*collect*"])


NO_FORK = {
    "a Python thread": (
        """
        import threading

        stop = threading.Event()

        def pytest_configure(config):
            threading.Thread(target=stop.wait, name="conftest-thread", daemon=True).start()

        def pytest_unconfigure(config):
            stop.set()
        """,
        "start-up: workers collected*other threads*conftest-thread*",
    ),
    # faulthandler's watchdog is a thread of its own that the threading module cannot see.
    "a native thread": (
        """
        import faulthandler

        def pytest_configure(config):
            faulthandler.dump_traceback_later(3600)

        def pytest_unconfigure(config):
            faulthandler.cancel_dump_traceback_later()
        """,
        "start-up: workers collected*1 native thread*",
    ),
    # Stands in for a pytest-cov of a shape compat/coverage.py does not know (the real one is
    # forked: tests/compat/test_coverage_compat.py).
    "coverage measurement": (
        """
        class MeasuringCoverage:
            cov_controller = object()

        def pytest_configure(config):
            config.pluginmanager.register(MeasuringCoverage(), "_cov")
        """,
        "start-up: workers collected*pytest-cov measures coverage*",
    ),
}


@pytest.mark.parametrize("blocker", list(NO_FORK))
@pytest.mark.slow
def test_what_makes_forking_unsafe_means_no_fork(pytester: pytest.Pytester, blocker: str) -> None:
    conftest, expected = NO_FORK[blocker]
    pytester.makeconftest(conftest)
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess("--n-jobs=2", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([expected])


def test_par_start_rejects_unknown_values(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npar_start = spawn\n")
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("--n-jobs=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option par_start*expected one of fork, collect*spawn*"])


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_captured_output_stays_with_its_test(pytester: pytest.Pytester, backend: str) -> None:
    """Forked workers share the main process's capture files unless they make their own."""
    pytester.makepyfile(test_prints=PRINTING_TESTS)
    result = pytester.runpytest_subprocess(
        "--n-jobs=2", f"--par-backend={backend}", "-p", "no:randomly"
    )
    result.assert_outcomes(failed=40)
    sections = re.split(r"_{5,} test_prints_its_own_id\[(\d+)\] _{5,}", result.stdout.str())
    found = dict(zip(sections[1::2], sections[2::2], strict=True))
    assert len(found) == 40
    for case, text in found.items():
        assert set(re.findall(r"output of case (\d+);", text)) == {case}
        assert text.count(f"output of case {case};") == 50


def test_each_worker_has_its_own_tmp_path_base(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json, os, pytest

        @pytest.mark.parametrize("n", range(8))
        def test_record(n, tmp_path, parproc_worker_id):
            with open(os.environ["TMP_RECORD"], "a") as record:
                record.write(json.dumps([parproc_worker_id, str(tmp_path)]) + "\\n")
        """
    )
    record = pytester.path / "record.txt"
    basetemp = pytester.path / "base"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMP_RECORD", str(record))
        result = pytester.runpytest_subprocess("--n-jobs=2", f"--basetemp={basetemp}")
    result.assert_outcomes(passed=8)
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert len({path for _, path in rows}) == 8
    for worker_id, path in rows:
        assert path.startswith(str(basetemp / worker_id) + "/")


def test_report_files_are_written_once_by_the_main_process(pytester: pytest.Pytester) -> None:
    copy_suite(pytester, "outcomes")
    serial = serial_run(pytester, "outcomes")
    parallel = run_suite(pytester, n_jobs=2)
    assert "forked after collection" in parallel.output
    assert_same_results(serial, parallel)


def test_the_garbage_collector_reaches_what_collection_built(pytester: pytest.Pytester) -> None:
    """The main process freezes its objects before forking; a worker's tests see the garbage
    collector as in a serial run, cycles built at import time included."""
    pytester.makepyfile(
        """
        import gc, weakref

        class Node:
            pass

        cycle = Node()
        cycle.me = cycle
        ref = weakref.ref(cycle)

        def test_a_cycle_from_import_time_is_collected():
            global cycle
            cycle = None
            gc.collect()
            assert ref() is None

        def test_other():
            pass
        """
    )
    result = pytester.runpytest_subprocess("--n-jobs=2", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["start-up: workers forked after collection*"])


def test_the_main_process_keeps_its_tests_and_replayed_reports_from_the_collector(
    pytester: pytest.Pytester,
) -> None:
    """The main process runs no test: what collection built and what the replay builds (reports
    the terminal keeps to the end) are frozen out of the garbage collector's passes, under
    every start method, so that its cost per test does not grow with the run."""
    pytester.makeconftest(
        """
        import gc, os

        def pytest_sessionfinish(session):
            if hasattr(session.config, "workerinput"):
                return  # a worker's session (one started by --par-start=collect)
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            first = reporter.stats["passed"][0]
            # gc.get_objects() leaves out what gc.freeze() moved to the permanent generation
            seen = any(obj is first for obj in gc.get_objects())
            with open("frozen.txt", "w") as out:
                out.write(f"{gc.get_freeze_count()} {seen}")
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(200))
        def test_n(n):
            pass
        """
    )
    for start in ("fork", "collect"):
        result = pytester.runpytest_subprocess("--n-jobs=2", f"--par-start={start}")
        result.assert_outcomes(passed=200)
        frozen, seen = (pytester.path / "frozen.txt").read_text().split()
        assert int(frozen) > 200 * 3, (start, frozen)
        assert seen == "False", f"--par-start={start}: a replayed report is still in gc's care"


def test_a_test_in_a_forked_worker_can_use_the_engine(pytester: pytest.Pytester) -> None:
    """Workers are forked while the engine's pool lock is held and the run's parallel_config
    is set: a nested Parallel call must find neither (it runs on threads, as in any worker)."""
    pytester.makepyfile(
        """
        import pytest
        from pytest_parproc import Parallel, delayed

        @pytest.mark.parametrize("n", range(4))
        def test_nested(n):
            assert Parallel(n_jobs=2)(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]
        """
    )
    result = pytester.runpytest_subprocess("--n-jobs=2", "-v", timeout=120)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["start-up: workers forked after collection*"])


def test_a_forked_worker_keeps_its_own_stdin_and_stderr(pytester: pytest.Pytester) -> None:
    """Capture files are replaced in a forked worker; what it puts back on fds 0 and 2 must be
    the worker's own (stdin from /dev/null, stderr to the pool's pipe), not the terminal."""
    record = pytester.path / "fds.txt"
    pytester.makeconftest(
        f"""
        import os, stat

        def pytest_runtest_logfinish(nodeid):
            if os.environ.get("PYTEST_PARPROC_WORKER"):
                stdin, null = os.fstat(0), os.stat(os.devnull)
                fifo = stat.S_ISFIFO(os.fstat(2).st_mode)
                with open({str(record)!r}, "a") as out:
                    out.write(f"{{stdin.st_rdev == null.st_rdev}} {{fifo}}\\n")
        """
    )
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess("--n-jobs=2", "--capture=fd")
    result.assert_outcomes(passed=2)
    assert set(record.read_text().split("\n")) - {""} == {"True True"}


def _installed_like_a_wheel(site: Path) -> None:
    """A distribution whose files include ``pytest_parproc/__init__.py`` and which has a pytest11
    entry point: pytest marks ``pytest_parproc`` for assertion rewriting, as it does when the
    plugin is installed from a wheel (an editable install lists no such file)."""
    dist = site / "rewrite_probe-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rewrite-probe\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\nrewrite_probe = rewrite_probe\n")
    (dist / "RECORD").write_text("rewrite_probe.py,,\npytest_parproc/__init__.py,,\n")
    (site / "rewrite_probe.py").write_text("")


@pytest.mark.parametrize(
    "flags",
    [("--par-backend=loky", "--par-start=collect"), *(("--par-backend=dask",),) * len(DASK)],
    ids=["collect", *(["dask"] * len(DASK))],
)
def test_workers_that_collect_under_filterwarnings_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, flags: tuple[str, ...]
) -> None:
    """A worker that builds its own session has imported the plugin before pytest marks it for
    assertion rewriting: pytest's "already imported" warning, under ``filterwarnings = error``
    (jinja2's and attrs's own settings), stopped every such worker."""
    site = pytester.path / "site"
    _installed_like_a_wheel(site)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), *sys.path]))
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    pytester.makepyfile(test_x="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    serial = run_suite(pytester)
    parallel = run_suite(pytester, *flags, n_jobs=2)
    assert_same_results(serial, parallel)
    assert parallel.exitstatus == 0, parallel.output
