"""-x and --maxfail (no new test starts once the stop condition is met), pytest.exit in a
test, and Ctrl-C (pytest's KeyboardInterrupt summary, no worker process left behind)."""

from __future__ import annotations

import re
import signal
import time

import pytest
from compare import BACKENDS, DASK, PROCESS_BACKENDS, run_suite
from processes_left import pids_in, start_pytest, still_running

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # waits on purpose: stops, signals and Ctrl-C mid-run

# test_b_waits runs on the other worker and holds it until the run is stopping (the main
# process's run directory under TMPDIR has its stop file), so whether test_b_after starts does
# not depend on timing.
STOP_SUITE = {
    "test_a.py": """
import os, pathlib

def test_a_fails():
    pathlib.Path(os.environ["MARKERS"], "failed").touch()
    assert False

def test_a_after():
    pass
""",
    "test_b.py": """
import glob, os, pathlib, time

def test_b_waits():
    deadline = time.monotonic() + 120
    while not glob.glob(os.path.join(os.environ["TMPDIR"], "pytest-parproc-*", "stop")):
        assert time.monotonic() < deadline, "the run never stopped"
        time.sleep(0.01)

def test_b_after():
    pass
""",
    "test_c.py": "def test_c_never():\n    pass\n",
}


def _write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for name, source in files.items():
        pytester.path.joinpath(name).write_text(source.lstrip())


@pytest.mark.parametrize("backend", [*PROCESS_BACKENDS, *DASK])
@pytest.mark.parametrize("stop_option", ["-x", "--maxfail=1"])
def test_no_new_test_starts_after_the_stop_condition(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backend: str, stop_option: str
) -> None:
    _write(pytester, STOP_SUITE)
    for folder in ("markers", "tmp"):
        pytester.path.joinpath(folder).mkdir()
    monkeypatch.setenv("MARKERS", str(pytester.path / "markers"))
    monkeypatch.setenv("TMPDIR", str(pytester.path / "tmp"))
    parallel = run_suite(pytester, stop_option, n_jobs=2, backend=backend)
    assert parallel.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert "stopping after 1 failures" in parallel.output
    ran = set(parallel.tests)
    assert "test_a.py::test_a_fails" in ran
    never = {"test_a.py::test_a_after", "test_b.py::test_b_after", "test_c.py::test_c_never"}
    assert not ran & never


@pytest.mark.parametrize("backend", [*BACKENDS, *DASK])
def test_maxfail_counts_failures_of_every_worker(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(
        test_many="""
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_fails(n):
            assert False
        """
    )
    serial = run_suite(pytester, "--maxfail=3")
    parallel = run_suite(pytester, "--maxfail=3", n_jobs=2, backend=backend)
    assert parallel.exitstatus == serial.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert len(serial.tests) == 3
    assert 3 <= len(parallel.tests) < 6  # stops; a test already running may still finish
    # pytest's own message counts the failures replayed when the run stopped (3 or more).
    assert re.search(r"stopping after [3-5] failures", parallel.output)


@pytest.mark.parametrize("backend", [*PROCESS_BACKENDS, *DASK])
def test_pytest_exit_in_a_test(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(
        test_exit="""
        import pytest

        def test_exits():
            pytest.exit("leaving now", returncode=7)

        def test_after():
            pass
        """,
        test_other="""
        def test_other_one():
            pass

        def test_other_two():
            pass
        """,
    )
    serial = run_suite(pytester, "-p", "no:cacheprovider")
    parallel = run_suite(pytester, "-p", "no:cacheprovider", n_jobs=2, backend=backend)
    assert serial.exitstatus == parallel.exitstatus == 7
    assert "leaving now" in parallel.output
    assert parallel.tests["test_exit.py::test_exits"] == serial.tests["test_exit.py::test_exits"]
    assert "test_exit.py::test_after" not in parallel.tests  # same worker, after the exit
    assert "test_exit.py::test_after" not in parallel.tests


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("backend", [*BACKENDS, *DASK])
def test_ctrl_c(pytester: pytest.Pytester, backend: str, signum: int) -> None:
    """Ctrl-C, or SIGTERM: a prompt stop, pytest's summary, exit code 2, no worker left."""
    # threading: tests still running are abandoned, and the one process ends
    markers = pytester.path / "markers"
    markers.mkdir()
    pytester.makepyfile(
        test_sleepy="""
        import os, pathlib, time
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_sleeps(n):
            pathlib.Path(os.environ["MARKERS"], f"{os.getpid()}-{n}").touch()
            for _ in range(1200):  # (dask interrupts between two calls into C: README)
                time.sleep(0.1)
        """
    )
    args = ("--n-jobs=2", f"--par-backend={backend}")
    process = start_pytest(pytester.path, *args, env={"MARKERS": str(markers)})
    try:
        deadline = time.monotonic() + 120
        while len(list(markers.iterdir())) < 2:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        workers = pids_in(markers)
        process.send_signal(signum)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    text = output.decode(errors="replace")
    assert process.returncode == pytest.ExitCode.INTERRUPTED, text
    assert "KeyboardInterrupt" in text
    assert not still_running(workers, limit_s=10), text


GRACEFUL = """
import os, pathlib, time
import pytest

@pytest.fixture(scope="session")
def resource():
    yield
    if os.environ.get("HANG_IN_TEARDOWN"):
        pathlib.Path(os.environ["MARKERS"], f"hanging-{os.getpid()}").touch()
        time.sleep(120)
    pathlib.Path(os.environ["MARKERS"], f"torn-{os.getpid()}").touch()

@pytest.mark.parametrize("n", range(4))
def test_sleeps(n, resource):
    pathlib.Path(os.environ["MARKERS"], f"{os.getpid()}-{n}").touch()
    time.sleep(120)
"""


# Tests that spin in Python code: dask workers run tests in a thread, where KeyboardInterrupt is
# raised asynchronously (a test blocked in C, as in time.sleep, gets it once the call returns).
BUSY = """
import os, pathlib, time
import pytest

@pytest.fixture(scope="session")
def resource():
    yield
    pathlib.Path(os.environ["MARKERS"], f"torn-{os.getpid()}").touch()

@pytest.mark.parametrize("n", range(4))
def test_busy(n, resource):
    pathlib.Path(os.environ["MARKERS"], f"{os.getpid()}-{n}").touch()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pass
"""


def interrupt_when_running(
    pytester: pytest.Pytester,
    backend: str,
    signums: list[int],
    env: dict[str, str],
    suite: str = GRACEFUL,
) -> tuple[int, str, set[int], set[str]]:
    """Start ``suite`` on two workers, send ``signums`` (the next once the workers hang in
    their teardown), and return exit code, output, workers and marker names."""
    markers = pytester.path / "markers"
    markers.mkdir()
    pytester.makepyfile(test_graceful=suite)
    args = ("--n-jobs=2", f"--par-backend={backend}", "-p", "no:randomly")
    process = start_pytest(pytester.path, *args, env={"MARKERS": str(markers), **env})
    try:
        deadline = time.monotonic() + 120
        while len(list(markers.iterdir())) < 2:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        workers = pids_in(markers)
        process.send_signal(signums[0])
        for signum in signums[1:]:
            while len([m for m in markers.iterdir() if m.name.startswith("hanging")]) < 2:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
            process.send_signal(signum)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return (
        process.returncode,
        output.decode(errors="replace"),
        workers,
        {path.name for path in markers.iterdir()},
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_ctrl_c_lets_the_workers_tear_their_fixtures_down(
    pytester: pytest.Pytester, backend: str, signum: int
) -> None:
    """As in a serial run, the running tests get KeyboardInterrupt and the fixtures set up for
    them are torn down: every worker's session fixture, here."""
    code, text, workers, markers = interrupt_when_running(pytester, backend, [signum], {})
    assert code == pytest.ExitCode.INTERRUPTED, text
    assert {f"torn-{pid}" for pid in workers} <= markers, text
    assert "the workers tear their fixtures down" in text
    assert "ran none of the tests left" not in text
    assert not still_running(workers, limit_s=10), text


@pytest.mark.parametrize("backend", DASK)
def test_ctrl_c_interrupts_the_tests_running_on_dask_workers(
    pytester: pytest.Pytester, backend: str
) -> None:
    """Not SIGINT (which would end a dask worker): KeyboardInterrupt raised in the thread that
    runs the test; the workers then tear their session fixtures down, as on loky."""
    code, text, workers, markers = interrupt_when_running(
        pytester, backend, [signal.SIGINT], {}, BUSY
    )
    assert code == pytest.ExitCode.INTERRUPTED, text
    assert len(workers) == 2, markers
    assert {f"torn-{pid}" for pid in workers} <= markers, text
    assert "KeyboardInterrupt" in text
    assert not still_running(workers, limit_s=10), text


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_a_second_ctrl_c_stops_the_workers_at_once(pytester: pytest.Pytester, backend: str) -> None:
    signums = [signal.SIGINT, signal.SIGINT]
    code, text, workers, markers = interrupt_when_running(
        pytester, backend, signums, {"HANG_IN_TEARDOWN": "1"}
    )
    assert code == pytest.ExitCode.INTERRUPTED, text
    assert "stopped at once by a second SIGINT" in text
    assert not any(name.startswith("torn-") for name in markers)
    assert not still_running(workers, limit_s=10), text


@pytest.mark.parametrize("backend", BACKENDS)
def test_keyboard_interrupt_raised_by_a_test(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(
        test_k="def test_a():\n    pass\n\ndef test_interrupts():\n    raise KeyboardInterrupt\n",
        test_other="def test_x():\n    pass\n\ndef test_y():\n    pass\n",
    )
    serial = run_suite(pytester, "-p", "no:cacheprovider")
    parallel = run_suite(pytester, "-p", "no:cacheprovider", n_jobs=2, backend=backend)
    assert serial.exitstatus == parallel.exitstatus == pytest.ExitCode.INTERRUPTED
    assert "KeyboardInterrupt raised by test_k.py::test_interrupts on worker w" in parallel.output


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_maxfail_stops_every_worker_once_the_total_is_reached(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    # Each module fails once, on a different worker; its next test waits until both failures
    # are counted in the run directory, so neither module's last test may start.
    pytester.path.joinpath("tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(pytester.path / "tmp"))
    module = """
import glob, os, time

def test_fails():
    assert False

def test_waits():
    deadline = time.monotonic() + 120
    pattern = os.path.join(os.environ["TMPDIR"], "pytest-parproc-*", "failures")
    while not [f for f in glob.glob(pattern) if os.path.getsize(f) >= 2]:
        assert time.monotonic() < deadline, "the second failure never came"
        time.sleep(0.01)

def test_after():
    pass
"""
    pytester.makepyfile(test_a=module, test_b=module)
    run = run_suite(pytester, "--maxfail=2", n_jobs=2, backend=backend)
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED
    ran = set(run.tests)
    assert {"test_a.py::test_fails", "test_b.py::test_fails"} <= ran
    assert not ran & {"test_a.py::test_after", "test_b.py::test_after"}


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_shouldstop_set_by_a_test(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(
        test_stop="""
        def test_asks_to_stop(request):
            request.session.shouldstop = "enough for today"

        def test_after():
            pass
        """,
        test_other="def test_x():\n    pass\n\ndef test_y():\n    pass\n",
    )
    serial = run_suite(pytester, "-p", "no:cacheprovider")
    parallel = run_suite(pytester, "-p", "no:cacheprovider", n_jobs=2, backend=backend)
    assert serial.exitstatus == parallel.exitstatus == pytest.ExitCode.INTERRUPTED
    assert "enough for today" in parallel.output
    assert "test_stop.py::test_after" not in parallel.tests
