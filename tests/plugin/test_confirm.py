"""The threading backend's confirmation pass: a test that fails on a thread only because of what
ran beside it is run again alone and reported as a serial run reports it; a real failure fails
once. And the summary's line when threads bring nothing (CPU-bound tests)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
from compare import BACKENDS, assert_same_results, copy_suite, run_suite, serial_run

from pytest_parproc.plugin.threads import guidance
from pytest_parproc.plugin.threads.confirm import PROPERTY, Confirmations, failure_text
from pytest_parproc.plugin.threads.guidance import CpuShare
from pytest_parproc.plugin.threads.runner import ThreadResult

pytest_plugins = ["pytester"]

#: the suite's tests that fail beside other tests on threads, and pass alone
BESIDE = (
    "test_cli.py::test_cli_greets_and_leaves[ada]",
    "test_cli.py::test_cli_greets_and_leaves[bob]",
    "test_gc_references.py::test_nothing_else_refers_to_the_thing",
    "test_switch.py::test_packrat_is_off_by_default",
)
REAL_FAILURE = "test_switch.py::test_fails_alone_too"


def _properties(junit_path: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for case in ElementTree.parse(junit_path).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        found[name] = [(p.get("name", ""), p.get("value", "")) for p in case.iter("property")]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_thread_unsafe_suite_matches_serial(pytester: pytest.Pytester, backend: str) -> None:
    copy_suite(pytester, "thread_unsafe")
    serial = serial_run(pytester, "thread_unsafe")
    n_jobs = 4 if backend == "threading" else 2
    # (four tests at once throughout: one at a time, fewer of them would fail beside others)
    full = ("--par-thread-concurrency=full",) if backend == "threading" else ()
    parallel = run_suite(pytester, *full, n_jobs=n_jobs, backend=backend)
    assert_same_results(serial, parallel)
    parallel.result.assert_outcomes(passed=912, failed=1)
    if backend != "threading":
        return
    output = parallel.output
    # (the suite's tests meet at barriers and events: on four threads they do fail beside
    # each other, every time)
    assert (
        "parproc: 4 failed beside other tests, passed alone: likely not thread-safe; mark them "
        "parproc_serial (reported passed):" in output
    )
    for nodeid in BESIDE:
        assert f"\n  {nodeid}\n" in output
    assert "parproc: 1 failed on a thread and again alone (reported once" in output
    # junitxml: each test case that passed alone carries the failure on its thread; the real
    # failure is one test case, failed once, as serially
    junit = str(pytester.path / ".junit-threading-4.xml")
    properties = _properties(junit)
    for nodeid in BESIDE:
        name = nodeid.replace(".py::", "::").replace("/", ".")
        ((key, value),) = properties[name]
        assert key == PROPERTY and value.startswith("call: ")
    assert parallel.junit[REAL_FAILURE.replace(".py::", "::")] == "failure"
    assert properties[REAL_FAILURE.replace(".py::", "::")] == []  # as serially
    # the extras parameter is a value, not pytest-html's fixture: those tests are concurrent
    assert "requests extras" not in output


THREAD_UNSAFE = """
import threading
SWITCH = {"on": False}
switched_on, looked = threading.Event(), threading.Event()

def test_turns_it_on():
    SWITCH["on"] = True
    switched_on.set()
    looked.wait(timeout=0.5)
    SWITCH["on"] = False

def test_expects_it_off():
    switched_on.wait(timeout=0.5)
    try:
        assert not SWITCH["on"]
    finally:
        looked.set()
"""


@pytest.mark.slow
def test_under_maxfail_a_failure_on_a_thread_stops_the_run_unconfirmed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(THREAD_UNSAFE)
    result = pytester.runpytest_subprocess(
        "--n-jobs=2", "--par-backend=threading", "-x", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=1, failed=1)
    assert "passed alone" not in result.stdout.str()
    result = pytester.runpytest_subprocess("--n-jobs=2", "--par-backend=threading")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["parproc: 1 failed beside other tests, passed alone*"])


def test_failure_text_is_a_failed_call_s_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.fixture
        def broken():
            raise RuntimeError("no database")
        def test_setup(broken):
            pass
        @pytest.mark.xfail(strict=False)
        def test_xfail():
            assert 0
        def test_long():
            assert "x" * 1000 == ""
        """
    )
    reports = pytester.inline_run("-p", "no:parproc").getreports("pytest_runtest_logreport")
    by_test: dict[str, list[pytest.TestReport]] = {}
    for report in reports:
        by_test.setdefault(report.nodeid.split("::")[-1], []).append(report)
    assert failure_text(by_test["test_setup"]) is None  # a fixture's: not run again
    assert failure_text(by_test["test_xfail"]) is None
    long = failure_text(by_test["test_long"])
    assert long is not None and long.startswith("call: AssertionError") and len(long) <= 306


def _result(index: int, reports: list[pytest.TestReport], main: bool = False) -> ThreadResult:
    return ThreadResult(index, reports, [], "w1", 0.0, None, on_main_thread=main)


def test_confirmations_hold_only_failures_and_only_when_enabled(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_ok():\n    pass\ndef test_bad():\n    assert 0\n")
    reports = pytester.inline_run("-p", "no:parproc").getreports("pytest_runtest_logreport")
    ok = [r for r in reports if r.nodeid.endswith("test_ok")]
    bad = [r for r in reports if r.nodeid.endswith("test_bad")]
    assert not Confirmations(enabled=False).hold(_result(1, bad))
    confirmations = Confirmations(enabled=True)
    assert not confirmations.hold(_result(0, ok))
    assert not confirmations.hold(_result(1, bad, main=True))  # it ran with nothing beside it
    held = _result(1, bad)
    assert confirmations.hold(held)
    assert confirmations.take() == [(1, "call: assert 0", held)]
    assert confirmations.take() == []
    # the run alone: a passed teardown carries the thread's failure; the test counts as
    # passed alone
    confirmations.started("call: assert 0")
    for report in ok:
        confirmations.annotate(report)
    confirmations.ended("test_bad", completed=True)
    assert ok[-1].user_properties == [(PROPERTY, "call: assert 0")]
    assert confirmations.passed_alone == {"test_bad": "call: assert 0"}
    assert confirmations.summary(verbose=False)[1:] == ["  test_bad"]
    assert confirmations.summary(verbose=True)[2] == "    on a thread, call: assert 0"
    # a run alone cut short by a stop is neither passed nor failed alone
    confirmations.started("call: assert 0")
    confirmations.ended("test_cut", completed=False)
    assert "test_cut" not in confirmations.passed_alone | confirmations.failed_alone


#: two tests that fail when they overlap (each checks it is alone for a moment)
OVERLAP = """
import time
active = []

def alone():
    active.append(1)
    time.sleep(0.3)
    overlapping = len(active)
    active.pop()
    assert overlapping == 1
"""


@pytest.mark.slow
def test_a_segment_ends_after_its_tests_ran_again_alone(pytester: pytest.Pytester) -> None:
    # a module fixture with two parameters: the first value torn down before the second is
    # set up, as serially, though a test of the first ran again alone meanwhile
    pytester.makepyfile(
        test_segments=OVERLAP
        + """
import os, pytest

def log(text):
    with open(os.environ["LOG"], "a") as file:
        file.write(text + "\\n")

@pytest.fixture(scope="module", params=[1, 2])
def p(request):
    log(f"setup {request.param}")
    yield request.param
    log(f"teardown {request.param}")

def test_a(p):
    alone()

def test_b(p):
    alone()
"""
    )
    logs = {}
    for name, args in {"serial": ("-p", "no:parproc"), "threads": THREADS}.items():
        log = pytester.path / f"{name}.log"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("LOG", str(log))
            result = pytester.runpytest_subprocess("-p", "no:randomly", *args)
        result.assert_outcomes(passed=4)
        logs[name] = log.read_text().splitlines()
    assert logs["threads"] == logs["serial"] == ["setup 1", "teardown 1", "setup 2", "teardown 2"]


THREADS = ("--n-jobs=4", "--par-backend=threading")


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["pytest.exit('bye', returncode=3)", "raise KeyboardInterrupt"])
def test_a_failure_held_for_confirmation_is_reported_when_the_run_stops(
    pytester: pytest.Pytester, stop: str
) -> None:
    pytester.makepyfile(
        f"""
import time, pytest

def test_real():
    assert 1 == 2

def test_stops():
    time.sleep(0.5)
    {stop}
"""
    )
    # (the stop comes before the segment's confirmation: the thread's failure stands)
    serial = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:parproc")
    threads = pytester.runpytest_subprocess("-p", "no:randomly", *THREADS)
    assert serial.parseoutcomes().get("failed") == threads.parseoutcomes().get("failed") == 1
    assert threads.ret == serial.ret


@pytest.mark.slow
def test_properties_of_a_test_run_again_are_recorded_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        OVERLAP
        + """
def test_a(record_property):
    record_property("k", "v")
    alone()

def test_b():
    alone()
"""
    )
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("-p", "no:randomly", *THREADS, f"--junitxml={junit}")
    result.assert_outcomes(passed=2)
    properties = _properties(str(junit))
    (name,) = [name for name in properties if name.endswith("test_a")]
    assert [key for key, _ in properties[name]] == ["k", PROPERTY]


def test_the_busy_line_needs_a_busy_interpreter_and_a_second_of_threads() -> None:
    assert CpuShare(cpu_s=0.5, wall_s=0.5).line() is None  # too short to judge
    assert CpuShare(cpu_s=2.0, wall_s=10.0).line() is None  # mostly waiting: threads help
    assert CpuShare(cpu_s=15.0, wall_s=10.0).line() is None  # threads ran at once: they help
    line = CpuShare(cpu_s=9.5, wall_s=10.0).line()
    assert line is not None
    assert "busy 95% of the 10.0 s" in line and "9.5 s of CPU" in line
    assert line.endswith("--par-backend=loky")


SLEEPY = """
import time, pytest
@pytest.mark.parametrize("n", range(16))
def test_waits(n):
    time.sleep(0.1)
"""


@pytest.mark.slow
def test_no_busy_line_where_tests_wait(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SLEEPY)
    result = pytester.runpytest_subprocess("--n-jobs=4", "--par-backend=threading")
    result.assert_outcomes(passed=16)
    assert "bring no speed-up" not in result.stdout.str()


def test_the_busy_line_is_written_from_the_run_s_figures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (in this process, with the thresholds at zero: that the controller measures and writes)
    monkeypatch.setattr(guidance, "BUSY_SHARE", 0.0)
    monkeypatch.setattr(guidance, "MIN_WALL_S", 0.0)
    pytester.makepyfile("def test_a():\n    pass\ndef test_b():\n    pass\n")
    result = pytester.runpytest("--n-jobs=2", "--par-backend=threading", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["parproc: threads bring no speed-up to these tests: they kept the interpreter busy *"]
    )


def test_a_test_runs_again_alone_after_the_serial_lane(pytester: pytest.Pytester) -> None:
    # serially, the lane's test (between the two) mends the switch the first one breaks; on
    # threads the lane runs after the concurrent tests, so the third fails on its thread, and
    # its run alone must come after the lane too to see what a serial run sees
    pytester.makepyfile(
        switch="SWITCH = 'ok'\nimport threading\nBROKEN = threading.Event()\n",
        test_order="""
        import pytest
        import switch

        def test_a_breaks():
            switch.SWITCH = "broken"
            switch.BROKEN.set()

        @pytest.mark.parproc_serial
        def test_b_mends():
            switch.SWITCH = "ok"

        def test_c_needs_it():
            switch.BROKEN.wait(10)
            assert switch.SWITCH == "ok"
        """,
    )
    serial = pytester.runpytest_subprocess("-p", "no:randomly")
    serial.assert_outcomes(passed=3)
    threads = pytester.runpytest_subprocess("-p", "no:randomly", *THREADS)
    threads.assert_outcomes(passed=3)
    assert "parproc: 1 failed beside other tests, passed alone" in threads.stdout.str()
