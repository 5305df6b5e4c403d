"""--par-timeout and processes left behind: a test past the limit fails with its worker's
stack, the worker and what its tests started are killed, and a fresh worker goes on; when the
main process is killed, its workers and what they started leave too."""

from __future__ import annotations

import signal
import textwrap
import time

import psutil
import pytest
from compare import DASK, PROCESS_BACKENDS, run_suite
from processes_left import start_pytest, still_running

from pytest_parproc.plugin.options import ParprocOptions
from pytest_parproc.plugin.processes.verdict import start_limit

pytest_plugins = ["pytester"]

HANGING = textwrap.dedent(
    """
    import os, subprocess, sys, time

    def test_hangs():
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        with open(os.environ["CHILD_PID"], "w") as record:
            record.write(str(child.pid))
        time.sleep(300)

    def test_quick_after():
        pass
    """
)
QUICK = "import pytest\n\n@pytest.mark.parametrize('n', range(6))\ndef test_quick(n):\n    pass\n"


@pytest.mark.parametrize("backend", [*PROCESS_BACKENDS, *DASK])
@pytest.mark.slow
def test_a_test_past_the_limit_fails_and_the_run_goes_on(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makepyfile(test_hang=HANGING, test_quick=QUICK)
    child_pid = pytester.path / "child.pid"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHILD_PID", str(child_pid))
        run = run_suite(pytester, "--par-timeout=2", n_jobs=2, backend=backend)
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED, run.output
    assert run.tests["test_hang.py::test_hangs"][:2] == ["setup:passed", "call:failed"]
    assert run.tests["test_hang.py::test_quick_after"] == [
        "setup:passed",
        "call:passed",
        "teardown:passed",
    ]
    assert sum(1 for nodeid in run.tests if nodeid.startswith("test_quick.py")) == 6
    assert "ran past the time limit (option --par-timeout = 2 s)" in run.output
    assert "in test_hangs" in run.output  # the test's own frame, from the stack at the limit
    # The process the test started went with its worker.
    child = int(child_pid.read_text())
    try:
        _, alive = psutil.wait_procs([psutil.Process(child)], timeout=10)
    except psutil.NoSuchProcess:
        alive = []
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.slow
def test_timeouts_do_not_count_as_crashes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_slow="import pytest, time\n\n@pytest.mark.parametrize('n', range(3))\n"
        "def test_slow(n):\n    time.sleep(300)\n",
        test_quick=QUICK,
    )
    result = pytester.runpytest_subprocess(
        "--n-jobs=2", "--par-timeout=1", "--par-max-worker-restart=0", timeout=180
    )
    result.assert_outcomes(failed=3, passed=6)


def test_tests_within_the_limit_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ok="import pytest, time\n\n@pytest.mark.parametrize('n', range(6))\n"
        "def test_ok(n):\n    time.sleep(0.05)\n"
    )
    result = pytester.runpytest_subprocess("--n-jobs=2", "--par-timeout=60")
    result.assert_outcomes(passed=6)


@pytest.mark.parametrize(
    ("args", "ini", "expected"),
    [
        (("--par-timeout=0",), "", "option --par-timeout: expected a number of seconds"),
        (("--par-timeout=abc",), "", "option --par-timeout: expected a number of seconds"),
        ((), "par_timeout = -3", "ini option par_timeout*expected a number of seconds*-3"),
        (
            ("--par-start-timeout=inf",),
            "",
            "option --par-start-timeout: expected a number of seconds*'inf'",
        ),
        (
            ("--par-timeout=5",),
            "faulthandler_timeout = 10",
            "option --par-timeout and the faulthandler_timeout ini option*use one of them",
        ),
    ],
)
def test_bad_time_limits_are_usage_errors(
    pytester: pytest.Pytester, args: tuple[str, ...], ini: str, expected: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("--n-jobs=2", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{expected}*"])


@pytest.mark.slow
def test_a_worker_that_hangs_while_collecting_is_stopped_at_the_limit(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import os, time

        def pytest_collection_modifyitems(items):
            if os.environ.get("PYTEST_PARPROC_WORKER"):
                time.sleep(300)  # only in workers that collect for themselves
        """
    )
    pytester.makepyfile(test_a="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--n-jobs=2", "--par-start=collect", "--par-start-timeout=2", timeout=180
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*a worker died outside of any test*",
            "*building its session, past the time limit (2 s: option --par-start-timeout = 2 s)*",
        ]
    )
    assert "in pytest_collection_modifyitems" in result.stdout.str()


@pytest.mark.slow
def test_workers_and_what_they_started_leave_when_the_main_process_is_killed(
    pytester: pytest.Pytester,
) -> None:
    pids = pytester.path / "pids"
    pids.mkdir()
    pytester.makepyfile(
        test_wait="""
        import os, pathlib, subprocess, sys, time
        import pytest

        @pytest.mark.parametrize("n", range(2))
        def test_waits(n):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
            folder = pathlib.Path(os.environ["PIDS"])
            (folder / f"{os.getpid()}-{child.pid}").touch()
            time.sleep(300)
        """
    )
    main = start_pytest(pytester.path, "--n-jobs=2", "-p", "no:randomly", env={"PIDS": str(pids)})
    try:
        deadline = time.monotonic() + 120
        while len(list(pids.iterdir())) < 2:
            assert time.monotonic() < deadline and main.poll() is None
            time.sleep(0.05)
    finally:
        main.send_signal(signal.SIGKILL)
        main.communicate(timeout=30)
    started = {int(pid) for path in pids.iterdir() for pid in path.name.split("-")}
    alive = still_running(started, limit_s=15)
    for process in alive:
        process.kill()
    assert not alive, "workers or their children outlived a killed main process"


def _options(
    timeout_s: float | None = None, start_timeout_s: float | None = None
) -> ParprocOptions:
    sources = {"timeout": "option --par-timeout", "start_timeout": "option --par-start-timeout"}
    return ParprocOptions(
        n_jobs=2,
        backend="loky",
        max_worker_restart=8,
        sources=sources,
        timeout_s=timeout_s,
        start_timeout_s=start_timeout_s,
    )


def test_building_a_session_is_bounded_by_default() -> None:
    """With no setting, a hang while collecting is still stopped: at ten times this process's
    own start-up and collection, and at least a minute (or the test limit, if more)."""
    assert start_limit(_options(), own_s=0.5) == (
        60.0,
        "ten times this process's own start-up and collection, and at least 60 s; "
        "--par-start-timeout sets it",
    )
    assert start_limit(_options(), own_s=12.0)[0] == 120.0
    assert start_limit(_options(timeout_s=2.0), own_s=0.5)[0] == 60.0
    assert start_limit(_options(timeout_s=300.0), own_s=0.5)[0] == 300.0
    assert start_limit(_options(timeout_s=2.0, start_timeout_s=7.0), own_s=50.0) == (
        7.0,
        "option --par-start-timeout = 7 s",
    )
