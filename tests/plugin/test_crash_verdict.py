"""What a worker's death means for the run (``processes.verdict``): pure decisions, no process."""

from __future__ import annotations

import pytest

from pytest_parproc.parallel import WorkerCrashedError
from pytest_parproc.plugin.processes.crashes import CrashReport
from pytest_parproc.plugin.processes.verdict import (
    OUTSIDE_TESTS,
    Death,
    Victim,
    judge,
    over_budget,
)

LIMIT = "option --par-timeout = 2 s"
START_LIMIT = (60.0, "ten times this process's own start-up and collection")
TIMEOUT_FAULT = "Timeout (0:00:02)!\nThread 0x1 (most recent call first):\n  File x.py, line 3"


def death(
    victim: Victim | None = None,
    fault: str = "",
    building: bool = False,
    worker_id: str = "w1",
    exitcode: int | None = -11,
) -> Death:
    error = WorkerCrashedError(exitcode=exitcode, pid=4321, stderr_tail="last words\n")
    return Death(error, worker_id, victim, fault, building)


def test_a_death_in_a_test_blames_that_test_in_its_phase_and_goes_on() -> None:
    verdict = judge(death(Victim(3, "t.py::test_x", "call")), LIMIT, START_LIMIT)
    assert not verdict.timed_out
    assert verdict.stop is None  # a replacement worker takes over
    assert "worker w1 (pid 4321) was killed by SIGSEGV (exit code -11)" in verdict.text
    assert "while running t.py::test_x (call)" in verdict.text
    assert verdict.text.endswith("The other tests go on in a replacement worker.")
    assert "last words" in verdict.text


def test_the_faulthandler_traceback_is_attached() -> None:
    fault = "Fatal Python error: Segmentation fault\n  File t.py, line 9 in test_x"
    verdict = judge(death(Victim(3, "t.py::test_x", "call"), fault=fault), LIMIT, START_LIMIT)
    assert "--- faulthandler traceback ---\n" + fault in verdict.text


def test_a_test_past_the_limit_is_a_timeout_naming_the_limit_and_the_stacks() -> None:
    victim = Victim(0, "t.py::test_slow", "setup")
    verdict = judge(death(victim, fault=TIMEOUT_FAULT, exitcode=1), LIMIT, START_LIMIT)
    assert verdict.timed_out
    assert verdict.stop is None
    assert "t.py::test_slow (setup) ran past the time limit (option --par-timeout = 2 s)" in (
        verdict.text
    )
    assert "--- every thread's Python stack at the limit ---\n" + TIMEOUT_FAULT in verdict.text


def test_a_timeout_header_without_a_worker_id_is_not_taken_for_a_timeout() -> None:
    verdict = judge(death(fault=TIMEOUT_FAULT, worker_id=""), LIMIT, START_LIMIT)
    assert not verdict.timed_out
    assert "a worker (pid 4321)" in verdict.text


@pytest.mark.parametrize(
    ("building", "stop", "doing"),
    [
        (True, "shouldstop", "while building its session (configuring, importing, collecting)"),
        (False, "shouldfail", "while it was not running a test"),
    ],
)
def test_a_death_outside_any_test_stops_the_run(building: bool, stop: str, doing: str) -> None:
    verdict = judge(death(building=building), LIMIT, START_LIMIT)
    assert verdict.stop == stop  # building: like a collection error (exit code 2)
    assert verdict.reason == OUTSIDE_TESTS
    assert doing in verdict.text


def test_a_session_build_past_its_limit_names_that_limit_and_why() -> None:
    verdict = judge(death(fault=TIMEOUT_FAULT, building=True, exitcode=1), LIMIT, START_LIMIT)
    assert verdict.timed_out
    assert verdict.stop == "shouldstop"
    assert "building its session, past the time limit (60 s: ten times this process's" in (
        verdict.text
    )


def test_the_restart_budget_counts_crashes_not_timeouts() -> None:
    crash = CrashReport("w0", 1, -9)
    timeout = CrashReport("w1", 2, 1, timed_out=True)
    assert over_budget([crash, timeout, timeout, timeout], 1) is None
    assert over_budget([crash, crash], 2) is None
    assert over_budget([crash, crash, crash], 2) == (
        "pytest-parproc: 3 worker crashes (--par-max-worker-restart=2)"
    )
    assert over_budget([crash], 0) is not None  # 0: stop at the first crash
