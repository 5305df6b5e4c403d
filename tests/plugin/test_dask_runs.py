"""Test sessions on dask (``--par-backend=dask``): a LocalCluster started for the run, or an
existing cluster (``--par-scheduler``) of real scheduler and worker processes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from compare import assert_balanced_fixtures, assert_same_results, copy_suite, run_suite
from dask_cluster import can_hide_folders, dask_cluster, tls_settings

pytest.importorskip("distributed")
pytest_plugins = ["pytester"]

FIXTURE_SUITES = ["outcomes", pytest.param("fixtures", marks=pytest.mark.slow)]


@pytest.mark.parametrize("suite", FIXTURE_SUITES)
def test_a_feature_suite_matches_serial_on_a_local_cluster(
    pytester: pytest.Pytester, suite: str
) -> None:
    copy_suite(pytester, suite)
    serial = run_suite(pytester)
    parallel = run_suite(pytester, n_jobs=2, backend="dask")
    assert_same_results(serial, parallel)
    if suite == "fixtures":
        assert_balanced_fixtures(parallel)
    assert "dask workers are processes of their own" in parallel.output


def test_a_worker_killed_during_a_test_fails_that_test_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_kill="""
        import os, signal, pytest

        @pytest.mark.parametrize("n", range(6))
        def test_n(n):
            if n == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    run = run_suite(pytester, n_jobs=2, backend="dask")
    assert run.junit["test_kill::test_n[3]"] == "failure", run.output
    assert [name for name, outcome in run.junit.items() if outcome != "passed"] == [
        "test_kill::test_n[3]"
    ], run.output
    assert "was killed by SIGKILL (exit code -9)" in run.output, run.output  # the nanny's log


def test_an_existing_cluster_with_n_jobs_as_a_cap(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_many="""
        import os, pytest, time

        @pytest.mark.parametrize("n", range(12))
        def test_n(n):
            time.sleep(0.1)
            assert os.environ["PYTEST_XDIST_WORKER"].startswith("gw")
        """
    )
    with dask_cluster(workers=3) as address:
        run = run_suite(pytester, f"--par-scheduler={address}", n_jobs=2, backend="dask")
    assert run.exitstatus == 0, run.output
    assert len(run.junit) == 12
    table = [line for line in run.output.splitlines() if "tcp://127.0.0.1:" in line]
    assert len(table) == 2, run.output  # two workers of three, named by their address


def test_an_unreachable_scheduler_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--n-jobs=2",
        "--par-backend=dask",
        "--par-scheduler=tcp://127.0.0.1:9",
        "--par-start-timeout=3",
        timeout=120,
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert "option --par-scheduler: could not reach the dask scheduler at 'tcp://127.0.0.1:9'" in (
        text
    )
    assert time.monotonic() - started < 100


def test_workers_with_threads_are_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    with dask_cluster(workers=1, extra_worker_args=("--nthreads", "2")) as address:
        result = pytester.runpytest_subprocess(
            "--n-jobs=2", "--par-backend=dask", f"--par-scheduler={address}", timeout=120
        )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "(2 threads)" in result.stderr.str() and "--nthreads 1" in result.stderr.str()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--par-backend=loky", "--par-scheduler=tcp://h:1"), "only used with --par-backend=dask"),
        (("--par-backend=dask", "--par-scheduler=nowhere"), "such as tcp://host:8786"),
        (("--par-backend=dask", "--par-max-tasks-per-worker=3"), "recycles loky workers"),
    ],
)
def test_bad_dask_options(pytester: pytest.Pytester, args: tuple[str, ...], expected: str) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("--n-jobs=2", *args, timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert expected in result.stderr.str()


def test_a_worker_checks_the_project_files(tmp_path: Path) -> None:
    from pytest_parproc.plugin.processes.dask_cluster import check_files

    (tmp_path / "test_a.py").write_text("def test_a():\n    pass\n")
    good = (("test_a.py", _digest(tmp_path / "test_a.py")),)
    check_files(str(tmp_path), good)
    with pytest.raises(RuntimeError, match=r"test_a\.py on this dask worker differs"):
        check_files(str(tmp_path), (("test_a.py", "0" * 64),))
    with pytest.raises(RuntimeError, match=r"has no .*test_b\.py"):
        check_files(str(tmp_path), (("test_b.py", "0" * 64),))


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_collection_error_and_collect_only_on_dask(pytester: pytest.Pytester) -> None:
    """The cluster starts while this process collects: a run that stops at a collection error
    closes it again, and ``--collect-only`` starts none."""
    pytester.makepyfile(
        test_ok="def test_a():\n    pass\n", test_broken="import nowhere_to_be_found\n"
    )
    result = pytester.runpytest_subprocess("--n-jobs=2", "--par-backend=dask", timeout=120)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # pytest's own code for collection errors
    assert "nowhere_to_be_found" in result.stdout.str()
    listed = pytester.runpytest_subprocess(
        "--n-jobs=2", "--par-backend=dask", "--collect-only", "-q", "-p", "no:cacheprovider",
        "test_ok.py", timeout=120,
    )  # fmt: skip
    assert listed.ret == pytest.ExitCode.OK
    assert "test_ok.py::test_a" in listed.stdout.str()


def test_after_a_crash_the_tests_queued_there_run_and_the_new_worker_may_start_processes(
    pytester: pytest.Pytester,
) -> None:
    """The scheduler fails every task a dead worker had, queued ones too: those never started,
    so they run elsewhere; and the worker its nanny starts again is not daemonic either."""
    pytester.makepyfile(
        test_spawn="""
        import multiprocessing, os, signal, pytest

        def child():
            pass

        def test_0_kill():
            os.kill(os.getpid(), signal.SIGKILL)

        @pytest.mark.parametrize("n", range(8))
        def test_spawns(n):
            process = multiprocessing.get_context("spawn").Process(target=child)
            process.start()
            process.join()
            assert process.exitcode == 0
        """
    )
    run = run_suite(pytester, "--par-dist=load", n_jobs=2, backend="dask")
    assert run.junit["test_spawn::test_0_kill"] == "failure", run.output
    assert sum(outcome == "passed" for outcome in run.junit.values()) == 8, run.output
    assert "outside of any test" not in run.output


FAR_SUITE = """
import os, signal, threading, pytest

@pytest.mark.parametrize("n", range(8))
def test_n(n, tmp_path):
    (tmp_path / "made").touch()  # under the main process's basetemp, made on the worker
    assert os.environ["PYTEST_XDIST_WORKER"] in {"gw0", "gw1", "gw2", "gw3"}
    if n == 3 and os.environ.get("CRASH"):
        # (to this thread: a signal sent to a dask worker process may land in another)
        signal.pthread_kill(threading.get_ident(), signal.SIGSEGV)
    assert n != 5 or not os.environ.get("FAIL")
"""


@pytest.mark.skipif(not can_hide_folders(), reason="needs a mount namespace (root on Linux)")
def test_workers_that_cannot_see_the_main_process_temporary_folder(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on other machines: the main process's temporary folder (where it keeps its own run
    folder and its basetemp) is an empty tmpfs for the workers. Worker ids, ``tmp_path``, a
    crash on a cluster that would run the test again elsewhere (the test named, with the
    faulthandler's traceback from the dead worker's machine), ``-x`` and the clean-up work."""
    main_tmp, worker_tmp = pytester.path / "main-tmp", pytester.path / "worker-tmp"
    main_tmp.mkdir()
    worker_tmp.mkdir()
    pytester.makepyfile(test_far=FAR_SUITE)
    monkeypatch.setenv("TMPDIR", str(main_tmp))
    with dask_cluster(workers=2, hide=main_tmp, worker_tmp=worker_tmp) as address:
        options = (f"--par-scheduler={address}", "--par-dist=load")
        monkeypatch.setenv("CRASH", "1")
        crashed = run_suite(pytester, *options, n_jobs=2, backend="dask")
        monkeypatch.delenv("CRASH")
        monkeypatch.setenv("FAIL", "1")
        stopped = run_suite(pytester, *options, "-x", n_jobs=2, backend="dask")
    failed = [name for name, outcome in crashed.junit.items() if outcome != "passed"]
    assert failed == ["test_far::test_n[3]"], crashed.output
    assert "Segmentation fault" in crashed.output, crashed.output  # the fault file, read there
    assert "was killed by SIGSEGV (exit code -11)" in crashed.output  # its nanny's log
    # How the death was seen varies: dask ran the unit again elsewhere, which ran no test of
    # it; or it was the held test, run in the worker's end-of-round task, which is pinned
    # there; or the dead worker held the result of an earlier unit, not fetched yet.
    seen = ("which refused to run it", "pinned there", "holding the batch's result")
    assert any(text in crashed.output for text in seen), crashed.output
    assert stopped.exitstatus == pytest.ExitCode.TESTS_FAILED, stopped.output
    assert stopped.junit["test_far::test_n[5]"] == "failure"
    assert "stopping after 1 failures" in stopped.output
    assert not list(worker_tmp.glob("pytest-parproc-*")), "the workers' folders are removed"
    assert not list(main_tmp.glob("pytest-parproc-*"))


@pytest.mark.skipif(not shutil.which("openssl"), reason="makes its certificate with openssl")
def test_a_cluster_that_requires_tls(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dask's own TLS settings (its configuration, here from the environment) apply unchanged:
    the run talks TLS to the scheduler and its workers, and without the settings it cannot."""
    pytester.makepyfile(
        test_tls="""
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_n(n):
            pass
        """
    )
    tls = tls_settings(tmp_path)
    with dask_cluster(workers=2, tls=tls) as address:
        assert address.startswith("tls://")
        refused = run_suite(pytester, f"--par-scheduler={address}", n_jobs=2, backend="dask")
        for name, value in tls.items():
            monkeypatch.setenv(name, value)
        run = run_suite(pytester, f"--par-scheduler={address}", n_jobs=2, backend="dask")
    assert run.exitstatus == 0, run.output
    assert len(run.junit) == 6
    assert sum("tls://127.0.0.1:" in line for line in run.output.splitlines()) == 2, run.output
    assert refused.exitstatus == pytest.ExitCode.USAGE_ERROR, refused.output
    # (at once, and not said to have waited: dask cannot even try without TLS settings)
    assert f"could not reach the dask scheduler at {address!r}: " in refused.output


def test_a_suite_that_freezes_the_clock_on_dask(pytester: pytest.Pytester) -> None:
    """freezegun freezes the whole process's clock, dask's event loop beside the test included
    (babel's suite stalled both workers): the loop keeps the real clock, and the tests the
    frozen one, as serially."""
    pytest.importorskip("freezegun")
    pytester.makepyfile(
        test_frozen="""
        import datetime, time
        import pytest
        from freezegun import freeze_time

        @pytest.mark.parametrize("n", range(40))
        def test_frozen(n):
            with freeze_time("1994-11-11"):
                assert datetime.date.today() == datetime.date(1994, 11, 11)
                started = time.monotonic()
                time.sleep(0.05)  # the worker's loop runs meanwhile, on the real clock
                assert time.monotonic() == started
        """
    )
    serial = run_suite(pytester)
    parallel = run_suite(pytester, n_jobs=2, backend="dask")
    assert_same_results(serial, parallel)
    assert parallel.exitstatus == 0, parallel.output
    assert "died" not in parallel.output and "left the dask cluster" not in parallel.output
