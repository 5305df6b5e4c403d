"""--par-thread-concurrency: how many tests the threading backend runs at once. Adaptive: all
threads while tests wait (threads overlap waiting), one at a time while they keep the
interpreter busy (more at once only adds cost); tests start in the order handed out."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from pytest_parproc.plugin.threads import admission
from pytest_parproc.plugin.threads.admission import HOLD_S, WINDOW_S, Admission, Concurrency
from pytest_parproc.plugin.threads.guidance import CpuShare

pytest_plugins = ["pytester"]


class FakeClocks:
    """A wall clock and a CPU clock that move only when told."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def advance(self, wall_s: float, busy: float) -> None:
        """``wall_s`` seconds pass, with ``busy`` CPU seconds spent per second."""
        self.wall += wall_s
        self.cpu += wall_s * busy


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> FakeClocks:
    fake = FakeClocks()
    monkeypatch.setattr(admission, "CLOCKS", (lambda: fake.wall, lambda: fake.cpu))
    return fake


def _window(concurrency: Concurrency, clocks: FakeClocks, busy: float, running: int) -> int:
    """One window at this CPU share, ended by a test (``running`` others still run: the
    limit does not depend on it); the limit after it."""
    clocks.advance(WINDOW_S, busy)
    concurrency.measure()
    return concurrency.limit


def test_busy_tests_run_one_at_a_time_and_all_threads_are_tried_again_later(
    clocks: FakeClocks,
) -> None:
    concurrency = Concurrency(4, adaptive=True)
    concurrency.resume()
    assert concurrency.limit == 4
    assert _window(concurrency, clocks, busy=1.0, running=0) == 1  # one interpreter's worth
    # held at one for HOLD_S: busy windows keep it there
    windows = int(HOLD_S / WINDOW_S)
    for _ in range(windows - 1):
        assert _window(concurrency, clocks, busy=0.97, running=0) == 1
    assert _window(concurrency, clocks, busy=0.97, running=0) == 4  # tried again...
    assert _window(concurrency, clocks, busy=1.0, running=0) == 1  # ...no better: back to one
    for _ in range(2 * windows - 1):  # and held twice as long this time
        assert _window(concurrency, clocks, busy=0.97, running=0) == 1
    assert _window(concurrency, clocks, busy=0.97, running=0) == 4
    assert concurrency.one_at_a_time_s == pytest.approx(3 * windows * WINDOW_S)


def test_tests_that_wait_get_all_threads_at_once(clocks: FakeClocks) -> None:
    concurrency = Concurrency(4, adaptive=True)
    concurrency.resume()
    assert _window(concurrency, clocks, busy=0.3, running=3) == 4  # waiting: threads overlap it
    assert _window(concurrency, clocks, busy=1.0, running=0) == 1
    # one at a time, the tests wait: all threads again at once, hold or not
    assert _window(concurrency, clocks, busy=0.2, running=0) == 4
    # and kept for a while, even if a window looks busy (tests that wait, overlapped)
    for _ in range(int(HOLD_S / WINDOW_S) - 1):
        assert _window(concurrency, clocks, busy=1.0, running=3) == 4
    assert _window(concurrency, clocks, busy=1.0, running=0) == 1


def test_tests_running_beside_the_gil_keep_all_threads(clocks: FakeClocks) -> None:
    # C code that lets go of the GIL (numpy, hashing): more than one CPU's worth at once
    concurrency = Concurrency(4, adaptive=True)
    concurrency.resume()
    for _ in range(20):
        assert _window(concurrency, clocks, busy=1.8, running=3) == 4


def test_full_keeps_n_jobs_at_once(clocks: FakeClocks) -> None:
    concurrency = Concurrency(4, adaptive=False)
    concurrency.resume()
    for _ in range(20):
        assert _window(concurrency, clocks, busy=1.0, running=3) == 4
    assert concurrency.one_at_a_time_s == 0.0


def test_tests_left_running_at_the_switch_that_wait_bring_all_threads_back(
    clocks: FakeClocks,
) -> None:
    # three tests at a barrier for a fourth when the limit falls to one: the next window sees
    # them wait, and lets the fourth in (waiting for them to end first would wait for ever)
    concurrency = Concurrency(4, adaptive=True)
    concurrency.resume()
    assert _window(concurrency, clocks, busy=1.0, running=3) == 1
    assert _window(concurrency, clocks, busy=0.0, running=3) == 4


def test_the_serial_lane_between_segments_is_not_measured(clocks: FakeClocks) -> None:
    concurrency = Concurrency(4, adaptive=True)
    concurrency.resume()
    assert _window(concurrency, clocks, busy=1.0, running=0) == 1
    concurrency.pause()
    clocks.advance(10.0, busy=0.0)  # the serial lane: a long wait, not the threads'
    concurrency.resume()
    assert _window(concurrency, clocks, busy=1.0, running=0) == 1
    assert concurrency.one_at_a_time_s == pytest.approx(WINDOW_S)


def _first_in_thread(gate: Admission, taken: list[int | None]) -> threading.Thread:
    def first() -> None:
        taken.append(gate.first())

    thread = threading.Thread(target=first, daemon=True)
    thread.start()
    return thread


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_test_starts_only_below_the_limit_and_in_the_segment_s_order(
    clocks: FakeClocks,
) -> None:
    concurrency = Concurrency(4, adaptive=True)
    concurrency.limit = 1
    gate = Admission(concurrency, total=3)
    assert gate.first() == 0
    taken: list[int | None] = []
    waiting = _first_in_thread(gate, taken)
    time.sleep(0.05)
    assert taken == []  # one at a time: it waits for test 0 to end
    assert gate.then(more=False) is None  # test 0's turn ends: the place goes to the other
    _wait_for(lambda: taken == [1], "the waiting thread took the next test")
    waiting.join(5)
    assert gate.then(more=True) == 2  # a turn goes on with the next test, if it may start
    assert gate.then(more=True) is None  # none left
    assert not gate.has_more()


def test_a_turn_does_not_go_on_past_the_limit(clocks: FakeClocks) -> None:
    concurrency = Concurrency(4, adaptive=True)
    gate = Admission(concurrency, total=10)
    assert [gate.first() for _ in range(4)] == [0, 1, 2, 3]
    concurrency.limit = 1
    assert gate.then(more=True) is None  # three still run
    assert gate.then(more=True) is None
    assert gate.then(more=True) is None
    assert gate.then(more=True) == 4  # the last one running may go on


def test_a_waiting_thread_measures_the_window_when_no_test_ends(clocks: FakeClocks) -> None:
    # one at a time, a test that sleeps holds the others back: no test ends to measure the
    # window, so the waiting threads do, and start their tests
    concurrency = Concurrency(4, adaptive=True)
    gate = Admission(concurrency, total=5)
    concurrency.limit = 1
    assert gate.first() == 0  # running, waiting on something (CPU does not move)
    taken: list[int | None] = []
    threads = [_first_in_thread(gate, taken) for _ in range(3)]
    clocks.advance(1.0, busy=0.0)
    _wait_for(lambda: sorted(taken) == [1, 2, 3], "the waiting threads started tests")  # type: ignore[type-var]
    assert concurrency.limit == 4
    for thread in threads:
        thread.join(5)


def test_close_sends_the_waiting_threads_away() -> None:
    concurrency = Concurrency(4, adaptive=False)
    concurrency.limit = 1
    gate = Admission(concurrency, total=10)
    assert gate.first() == 0
    taken: list[int | None] = []
    threads = [_first_in_thread(gate, taken) for _ in range(3)]
    time.sleep(0.05)
    assert taken == []
    gate.close()
    for thread in threads:
        thread.join(5)
    assert taken == [None, None, None]
    assert gate.then(more=True) is None  # nothing starts after it


def test_the_summary_says_how_long_tests_ran_one_at_a_time() -> None:
    line = CpuShare(cpu_s=9.5, wall_s=10.0).line(one_at_a_time_s=8.0)
    assert line is not None
    assert "so they ran one at a time for 8.0 s of it" in line
    assert "--par-thread-concurrency=full" in line
    assert "one at a time" not in (CpuShare(cpu_s=9.5, wall_s=10.0).line() or "")


#: a conftest that records, for each test, how many tests ran while it did (``at_once.txt``)
RECORDING = """
import itertools
import threading
import time

_lock = threading.Lock()
running = [0]
seen = []
threads = {}


def spend(name, seconds):
    with _lock:
        running[0] += 1
    time.sleep(seconds)
    with _lock:
        seen.append(running[0])
        threads[name] = threading.current_thread().name
        running[0] -= 1
    return name


def pytest_sessionfinish(session):
    with open("at_once.txt", "w") as file:
        file.write(" ".join(map(str, seen)))
    with open("threads.txt", "w") as file:
        file.write(" ".join(threads[name] for name in sorted(threads)))
"""

#: and a clock that moves only when a test says so: each test "spends" a tenth of a second,
#: all of it on the CPU, whatever the machine's load
BUSY_CLOCK = """
from pytest_parproc.plugin.threads import admission

_now, _cpu = [0.0], [0.0]
admission.CLOCKS = (lambda: _now[0], lambda: _cpu[0])
_spend = spend


def spend(name, seconds):
    _spend(name, seconds)
    with _lock:
        _now[0] += 0.1
        _cpu[0] += 0.1


def idle(name, seconds):
    # a tenth of a second waiting: no CPU
    _spend(name, seconds)
    with _lock:
        _now[0] += 0.1
"""


def _at_once(pytester: pytest.Pytester) -> list[int]:
    return [int(n) for n in (pytester.path / "at_once.txt").read_text().split()]


@pytest.mark.parametrize("mode", ["adaptive", "full"])
def test_a_busy_suite_runs_one_test_at_a_time(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeconftest(RECORDING + BUSY_CLOCK)
    pytester.makepyfile(
        test_busy="""
        import pytest
        from conftest import spend

        @pytest.mark.parametrize("n", range(40))
        def test_busy(n):
            spend(n, 0.02)
        """
    )
    result = pytester.runpytest_subprocess(
        "--n-jobs=4", "--par-backend=threading", f"--par-thread-concurrency={mode}", "-p",
        "no:randomly",
    )  # fmt: skip
    result.assert_outcomes(passed=40)
    beside_others = [n for n in _at_once(pytester) if n > 1]
    # consecutive tests on different threads: one at a time, a thread gets a few at once
    names = (pytester.path / "threads.txt").read_text().split()
    changes = sum(1 for before, after in itertools.pairwise(names) if before != after)
    if mode == "adaptive":
        # the first window and one window of all threads again (each three tests, and those
        # running when it ended) at most; the rest one at a time
        assert len(beside_others) <= 16, _at_once(pytester)
        assert changes <= 20, names
    else:
        assert len(beside_others) > 16, _at_once(pytester)
        assert changes > 28, names


def test_tests_that_come_to_wait_after_busy_ones_get_every_thread(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(RECORDING + BUSY_CLOCK)
    pytester.makepyfile(
        test_1busy="""
        import pytest
        from conftest import spend

        @pytest.mark.parametrize("n", range(100))
        def test_busy(n):
            spend(n, 0.0)
        """,
        test_2waits="""
        import pytest
        from conftest import idle

        @pytest.mark.parametrize("n", range(40))
        def test_waits(n):
            idle(100 + n, 0.05)
        """,
    )
    result = pytester.runpytest_subprocess(
        "--n-jobs=4", "--par-backend=threading", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=140)
    at_once = _at_once(pytester)
    # the busy ones mostly one at a time (the first window, and all threads tried again now
    # and then); the waiting ones on every thread again after a window, not once a thread's
    # turn of busy tests is over
    assert sum(1 for n in at_once[:100] if n > 1) <= 30, at_once
    assert max(at_once[-20:]) >= 2, at_once


def test_an_internal_error_keeps_the_results_before_it(pytester: pytest.Pytester) -> None:
    # a hook that fails on one test's report (pytest's internal error) ends a thread's turn:
    # the tests it ran before in that turn are reported all the same, as serially
    pytester.makeconftest(
        RECORDING
        + BUSY_CLOCK
        + """
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if item.nodeid.endswith("[200]") and call.when == "call":
        raise RuntimeError("the hook broke")
    return report
"""
    )
    pytester.makepyfile(
        test_busy="""
        import pytest
        from conftest import spend

        @pytest.mark.parametrize("n", range(300))
        def test_busy(n):
            spend(n, 0.0)
        """
    )
    args = ("-p", "no:randomly", "-p", "no:cacheprovider")
    serial = pytester.runpytest_subprocess(*args)
    assert serial.ret == pytest.ExitCode.INTERNAL_ERROR
    serial.assert_outcomes(passed=200)
    threads = pytester.runpytest_subprocess("--n-jobs=4", "--par-backend=threading", *args)
    assert threads.ret == pytest.ExitCode.INTERNAL_ERROR
    assert threads.parseoutcomes()["passed"] >= 200, threads.stdout.str()[-2000:]
    assert "RuntimeError: the hook broke" in threads.stdout.str()


def test_a_suite_that_waits_keeps_every_thread(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(RECORDING)
    pytester.makepyfile(
        test_sleeps="""
        import pytest
        from conftest import spend

        @pytest.mark.parametrize("n", range(24))
        def test_sleeps(n):
            spend(n, 0.2)  # waiting: no CPU
        """
    )
    result = pytester.runpytest_subprocess(
        "--n-jobs=4", "--par-backend=threading", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=24)
    assert max(_at_once(pytester)[12:]) >= 2, _at_once(pytester)  # in the second half too
