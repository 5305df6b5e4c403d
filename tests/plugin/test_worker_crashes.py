"""A test that kills its worker is reported as failed, naming the test and the worker, with the
faulthandler traceback and the worker's last stderr; the other tests go on in a replacement
worker; --par-max-worker-restart bounds the replacements."""

from __future__ import annotations

import pytest
from compare import DASK, PROCESS_BACKENDS, run_suite

pytest_plugins = ["pytester"]

DEATHS = {
    "os._exit": "os._exit(3)",
    "os._exit(0)": "os._exit(0)",
    "segfault": "import ctypes; ctypes.string_at(0)",
    "SIGKILL": "os.kill(os.getpid(), signal.SIGKILL)",
}


def _suite(pytester: pytest.Pytester, death: str) -> None:
    pytester.makepyfile(
        test_dies=f"""
        import os, signal, sys

        def test_before():
            pass

        def test_dies():
            sys.stderr.write("last words on stderr\\n")
            sys.stderr.flush()
            {DEATHS[death]}

        def test_after():
            pass
        """,
        test_others="""
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_other(n):
            pass
        """,
    )


@pytest.mark.parametrize("backend", [*PROCESS_BACKENDS, *DASK])
@pytest.mark.parametrize("death", list(DEATHS))
@pytest.mark.slow
def test_a_dying_test_fails_alone(pytester: pytest.Pytester, backend: str, death: str) -> None:
    _suite(pytester, death)
    # -s: what the test writes to stderr goes to the worker's stderr, not to pytest's capture.
    run = run_suite(pytester, "-s", "-p", "no:faulthandler", n_jobs=2, backend=backend)
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED, run.output
    assert run.tests.pop("test_dies.py::test_dies") == [
        "setup:passed",
        "call:failed",
        "teardown:passed",
    ]
    # Every other test ran and passed, the ones after the crash included.
    assert len(run.tests) == 6
    assert all(
        outcomes == ["setup:passed", "call:passed", "teardown:passed"]
        for outcomes in run.tests.values()
    ), run.output
    output = run.output
    assert "test_dies.py::test_dies (call)" in output
    assert "pytest-parproc: worker w" in output
    if backend == "dask":  # its scheduler sees a worker leave, not the exit code
        assert "left the dask cluster" in output or "died while running it" in output, output
        return
    if death == "segfault":
        assert "Segmentation fault" in output
        assert 'File "' in output and "test_dies.py" in output  # the faulthandler traceback
        assert "SIGSEGV" in output
    if death == "SIGKILL":
        assert "killed by SIGKILL" in output
    if death == "os._exit":
        assert "exited unexpectedly with exit code 3" in output
    if death == "os._exit(0)":
        assert "exited unexpectedly with exit code 0" in output
    if backend == "loky":  # multiprocessing workers write straight to the terminal
        assert "last lines the worker wrote to stderr ---\nlast words on stderr" in output
    assert run.junit["test_dies::test_dies"] == "failure"


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
@pytest.mark.slow
def test_max_worker_restart_zero_stops_at_the_first_crash(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makepyfile(
        test_crashy="""
        import os

        def test_dies():
            os._exit(1)

        def test_after():
            pass
        """,
        test_pad="def test_pad_one():\n    pass\n\ndef test_pad_two():\n    pass\n",
    )
    run = run_suite(pytester, "--par-max-worker-restart=0", n_jobs=2, backend=backend)
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert "test_crashy.py::test_after" not in run.tests
    assert "more than the 0 replacements allowed" in run.output


@pytest.mark.parametrize("start", ["fork", "collect"])
@pytest.mark.slow
def test_a_worker_that_dies_outside_any_test_stops_the_run_and_says_why(
    pytester: pytest.Pytester, start: str
) -> None:
    # conftest kills every worker while it makes its session (its own, or the one it inherited):
    # retrying would die the same way.
    pytester.makeconftest(
        """
        import os

        def pytest_plugin_registered(plugin, manager):
            if os.environ.get("PYTEST_PARPROC_WORKER") and (
                type(plugin).__name__ == "ReportCollector"
            ):
                os._exit(5)
        """
    )
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    run = run_suite(pytester, f"--par-start={start}", n_jobs=2, backend="loky")
    # Like a collection error: the run stops with exit code 2, the death is shown once.
    assert run.exitstatus == pytest.ExitCode.INTERRUPTED
    assert "a worker died outside of any test" in run.output
    assert "exited unexpectedly with exit code 5 while building its session" in run.output


def test_a_crash_at_the_end_of_a_round_leaves_no_session_behind(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker dies in its end-of-round task (running its held test) while another still runs a
    test. The other worker then gets no end-of-round task of its own: its session must still be
    ended (module fixture torn down) and its held test run exactly once."""
    events = pytester.path / "events.txt"
    monkeypatch.setenv("EVENTS", str(events))
    pytester.makepyfile(
        test_a="""
        import os, pathlib

        def test_a1():
            pass

        def test_a2_kills_its_worker():
            pathlib.Path(os.environ["EVENTS"] + ".pid").write_text(str(os.getpid()))
            os._exit(1)
        """,
        test_b="""
        import os, pathlib, time
        import pytest

        def note(text):
            with open(os.environ["EVENTS"], "a") as events:
                events.write(f"{text} {os.getpid()}\\n")

        @pytest.fixture(scope="module")
        def mod():
            note("setup")
            yield
            note("teardown")

        def test_b1(mod):
            # Wait until the other worker has died in its end-of-round task.
            marker = pathlib.Path(os.environ["EVENTS"] + ".pid")
            deadline = time.monotonic() + 120
            while True:
                assert time.monotonic() < deadline
                if marker.exists() and marker.read_text():
                    try:
                        os.kill(int(marker.read_text()), 0)
                    except ProcessLookupError:
                        break
                time.sleep(0.01)

        def test_b2(mod):
            note("b2")
        """,
    )
    run = run_suite(pytester, n_jobs=2, backend="loky")
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED, run.output
    assert run.tests["test_a.py::test_a2_kills_its_worker"][1] == "call:failed"
    for nodeid in ("test_a.py::test_a1", "test_b.py::test_b1", "test_b.py::test_b2"):
        assert run.tests[nodeid] == ["setup:passed", "call:passed", "teardown:passed"], nodeid
    lines = [line.split()[0] for line in events.read_text().splitlines()]
    assert lines.count("b2") == 1
    assert lines.count("setup") == lines.count("teardown") >= 1


@pytest.mark.slow
def test_a_conftest_that_fails_only_in_workers_is_reported_once(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import os

        if os.environ.get("PYTEST_PARPROC_WORKER"):
            raise RuntimeError("this conftest breaks in workers")
        """
    )
    pytester.makepyfile(test_one="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess("--n-jobs=2", "--par-start=collect", timeout=120)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    assert output.count("could not build its session") == 1
    assert "RuntimeError: this conftest breaks in workers" in output
    result.stdout.fnmatch_lines(["*Interrupted: pytest-parproc: worker w* could not build*"])
