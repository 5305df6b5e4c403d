"""A test that kills its worker is reported as failed, naming the test and the worker, with the
faulthandler traceback and the worker's last stderr; the other tests go on in a replacement
worker; --par-max-worker-restart bounds the replacements."""

from __future__ import annotations

import pytest
from compare import PROCESS_BACKENDS, run_suite

pytest_plugins = ["pytester"]

DEATHS = {
    "os._exit": "os._exit(3)",
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


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
@pytest.mark.parametrize("death", list(DEATHS))
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
    if death == "segfault":
        assert "Segmentation fault" in output
        assert 'File "' in output and "test_dies.py" in output  # the faulthandler traceback
        assert "SIGSEGV" in output
    if death == "SIGKILL":
        assert "killed by SIGKILL" in output
    if death == "os._exit":
        assert "exited unexpectedly with exit code 3" in output
    if backend == "loky":  # multiprocessing workers write straight to the terminal
        assert "last lines the worker wrote to stderr ---\nlast words on stderr" in output
    assert run.junit["test_dies::test_dies"] == "failure"


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
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


def test_a_worker_that_cannot_start_does_not_hang_the_run(pytester: pytest.Pytester) -> None:
    # conftest kills every worker while it builds its session: the run must end, fail, and say
    # why, once the restarts allowed are used up.
    pytester.makeconftest(
        """
        import os
        from pytest_parproc import is_worker

        def pytest_configure(config):
            if os.environ.get("PYTEST_PARPROC_WORKER"):
                os._exit(5)
        """
    )
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    run = run_suite(pytester, "--par-max-worker-restart=2", n_jobs=2, backend="loky")
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert "worker crashes" in run.output
