"""How many tests run on threads at once (``--par-thread-concurrency``).

Threads share one interpreter and, on a standard build, one GIL: tests that keep it busy gain
nothing from running beside each other, and lose: each switch between them costs, and the
garbage collector walks what every running test holds. Such a suite ran 1.3x to 1.4x slower
with four tests at once than with one (pygments', packaging's and jinja2's suites, on two
cores). Tests that wait (sleeps, sockets, subprocesses) or run C code that lets go of the GIL
gain from it.

So, by default (``adaptive``), the run measures it. Over windows of a quarter of a second it
compares the CPU time of the whole process (``time.process_time``: every thread, C code
included) with the wall time:

- with every thread at work, a process using about one CPU (``BUSY_SHARE`` to
  ``PARALLEL_SHARE``) is bound by one interpreter: tests then start one at a time;
- one at a time, a process using less (``< BUSY_SHARE``) has tests that wait: all threads
  again, and kept for a while (``HOLD_S``, doubled each time one at a time proves wrong);
- one at a time and busy, every ``HOLD_S`` (doubled each time) all threads are tried again
  for a window, in case the tests have come to code that runs beside the GIL (numpy, hashing):
  a process using more than ``PARALLEL_SHARE`` CPUs keeps them.

One at a time, a thread goes on with the next tests for about ``GROUP_S`` before it hands over
(``Admission.then``): each hand-over between threads costs a few tenths of a millisecond (the GIL
changing hands, the pool's queues), as much as a small test takes.

``full`` always runs ``--n-jobs`` tests at once (a thread-safety check wants that).

Tests start in the segment's order (``Admission`` gives a thread the next test only once it
may start): the last test of a module waits at its teardown for the module's other tests, which
started before it, so a test must never wait to start behind a later one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .guidance import BUSY_SHARE, PARALLEL_SHARE

#: seconds of wall time over which the CPU share is measured (ended by a test that ends, or one
#: that waits to start)
WINDOW_S = 0.25
#: seconds a number of tests at once is kept after a window proved the other one wrong
HOLD_S = 2.0
#: seconds a thread goes on taking tests while tests run one at a time (its turn): each turn
#: is a round trip between threads (a few tenths of a millisecond, as much as a small test);
#: when tests start to wait, the other threads take tests as soon as the limit rises
GROUP_S = 0.2
#: the wall clock and the CPU clock of the whole process (a test suite may stand in its own)
CLOCKS: tuple[Callable[[], float], Callable[[], float]] = (time.perf_counter, time.process_time)


class Concurrency:
    """The number of tests at once, ``n_jobs`` or 1, from the CPU share of each window; kept
    for the whole run (its segments and the runs again alone between them)."""

    def __init__(self, n_jobs: int, adaptive: bool) -> None:
        self.n_jobs = n_jobs
        self.adaptive = adaptive and n_jobs > 1
        self.limit = n_jobs
        self._wall, self._cpu = CLOCKS
        #: the window measured now: its start (wall, cpu); None between segments. (The tests
        #: that started under a previous limit count in the next window: they may be waiting
        #: for others to start, which a new limit of one would hold back until they time out.)
        self._window: tuple[float, float] | None = None
        #: wall seconds of the concurrent segments so far (the serial lane's time is not)
        self._active_s = 0.0
        #: the limit is kept until then (in ``_active_s``), whatever a window shows, except
        #: that tests found waiting go back to all threads at once
        self._hold_until = 0.0
        #: how long the next hold of each limit lasts: doubled each time it is taken
        self._hold_s = {1: HOLD_S, n_jobs: HOLD_S}
        #: wall seconds of the concurrent segments spent at one test at a time (the summary's)
        self.one_at_a_time_s = 0.0
        self._active = False
        self._last = 0.0

    def resume(self) -> None:
        """A concurrent segment starts (no test running): a window starts now."""
        now = self._last = self._wall()
        self._active = True
        self._window = (now, self._cpu())

    def pause(self) -> None:
        """The segment has ended: what follows (the serial lane) is not measured."""
        self._count(self._wall())
        self._active = False
        self._window = None

    def measure(self) -> None:
        """A test ended, or one waits to start: the window may be over, and the limit change."""
        if not self.adaptive or not self._active:
            return
        now = self._wall()
        self._count(now)
        if self._window is None:
            return
        wall_started, cpu_started = self._window
        if now - wall_started < WINDOW_S:
            return
        cpu = self._cpu()
        self._window = (now, cpu)
        self.limit = self._wanted((cpu - cpu_started) / (now - wall_started), self._active_s)

    def _wanted(self, share: float, now: float) -> int:
        """The limit after a window at this CPU share (``now``: in concurrent seconds)."""
        if self.limit == 1:
            if share < BUSY_SHARE:  # the tests wait: threads overlap that
                return self._hold(self.n_jobs, now)
            # busy: all threads again for a window, now and then (code beside the GIL?)
            return self.n_jobs if now >= self._hold_until else 1
        if BUSY_SHARE <= share <= PARALLEL_SHARE and now >= self._hold_until:
            return self._hold(1, now)  # one interpreter's worth of CPU, however many threads
        return self.n_jobs

    def _hold(self, limit: int, now: float) -> int:
        self._hold_until = now + self._hold_s[limit]
        self._hold_s[limit] *= 2
        return limit

    def _count(self, now: float) -> None:
        if self._active:
            elapsed = max(now - self._last, 0.0)
            self._active_s += elapsed
            if self.limit == 1:
                self.one_at_a_time_s += elapsed
        self._last = now


class Admission:
    """The gate of a concurrent segment: a thread takes the segment's next test only when fewer
    than ``concurrency.limit`` run, so tests start in the segment's order, however the threads
    are scheduled. An engine task is a turn (``ThreadRunner.run_turn``): a first test (``first``)
    and, while tests run one at a time, the next ones for about ``GROUP_S`` (``then``)."""

    def __init__(self, concurrency: Concurrency, total: int) -> None:
        self.concurrency = concurrency
        self._total = total
        self._ready = threading.Condition(threading.Lock())
        self._running = 0
        self._next = 0
        self._closed = False
        concurrency.resume()

    def has_more(self) -> bool:
        """Whether a test of the segment is still to be taken."""
        return not self._closed and self._next < self._total

    def first(self) -> int | None:
        """A turn's first test: its position in the segment, once fewer than the limit run;
        None when none is left. While it waits, a window may end with no test ending (tests
        that sleep): the waiting threads measure it."""
        with self._ready:
            while self.has_more() and self._running >= self.concurrency.limit:
                if not self._ready.wait(timeout=WINDOW_S):
                    self._measure()
            return self._take()

    def then(self, more: bool) -> int | None:
        """The turn's test has ended: the next position if the turn goes on (``more``) and a
        test may start now; else None, and a waiting thread gets the place."""
        with self._ready:
            self._running -= 1
            self._measure()
            if more and self._running < self.concurrency.limit:
                position = self._take()
                if position is not None:
                    return position
            self._ready.notify()
            return None

    def close(self) -> None:
        """No test starts any more (the segment ends: done, stopped, interrupted)."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            self.concurrency.pause()

    def _take(self) -> int | None:
        if not self.has_more():
            return None
        self._running += 1
        self._next += 1
        return self._next - 1

    def _measure(self) -> None:
        limit = self.concurrency.limit
        self.concurrency.measure()
        if self.concurrency.limit > limit:
            self._ready.notify_all()
