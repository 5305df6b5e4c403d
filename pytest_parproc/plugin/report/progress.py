"""Live progress of a parallel run: the status line on a terminal (tests done, failures, each
worker's current test, the time left), and a SLOW line for each test running longer than
``--par-slow``, also where nothing is redrawn (CI logs).

A thread of the main process does it, a few times a second, holding the terminal lock: the
main thread holds it too, except while it waits for results (``View.waiting``), so whatever the
main thread writes to the terminal, it writes with the terminal to itself. While the main
thread runs tests itself (``View.main_thread_tests``), there is no progress thread at all. A
fork (a pool starting its workers) waits until the thread is between two looks
(``os.register_at_fork``): the child never inherits a half-written line or a lock the thread
held."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...parallel.resources import allow_fork_beside
from .terminal import BottomLine, DirectOutput

#: worker id -> (index of the test it runs in the session's items, when it started)
Running = dict[str, tuple[int, float]]


@dataclass
class WorkersNow:
    """Where the run is, as the controller tells it: what each worker runs now, and the tests
    ended (by the workers, replayed or not yet) and failed so far."""

    running: Running
    done: int = 0
    failed: int = 0
    #: the indices of the tests replayed: the replayer's own set, not a copy (the main thread
    #: replays only while it holds the lock, which a look holds throughout)
    finished: frozenset[int] | set[int] = frozenset()

    @classmethod
    def of(
        cls, told: tuple[Running, int, int], finished: set[int], failed_reports: int
    ) -> WorkersNow:
        """From what the workers tell (running, ended, failed: ``RunDirectory.workers_now``),
        the tests replayed and the failed reports the session counted (tests that ran in the
        main process, or whose worker died, count only there)."""
        running, done, failed = told
        return cls(running, max(done, len(finished)), max(failed, failed_reports), finished)


BAR_TICK_S = 0.25
#: the fewest characters of a node id worth showing (its end: the test's name)
MIN_NAME = 12
LINES_TICK_S = 0.5
#: however small --par-slow is, the thread looks at most 20 times a second
MIN_TICK_S = 0.05


@dataclass
class Counts:
    """Tests ended and failed so far, and the expected seconds of the tests not ended yet
    (from the recorded durations; see ``Progress``)."""

    done: int = 0
    failed: int = 0
    expected_left_s: float = 0.0


class Progress:
    """The progress thread of one run."""

    def __init__(
        self,
        lock: threading.RLock,
        nodeids: Sequence[str],
        n_workers: int,
        workers_now: Callable[[], WorkersNow],
        slow_s: float,
        write_line: Callable[[str], None],
        bar: BottomLine | None,
        expected: dict[str, float],
        out: DirectOutput | None = None,
    ) -> None:
        self.lock = lock
        self.nodeids = nodeids
        self.n_workers = max(1, n_workers)
        self.workers_now = workers_now
        self.slow_s = slow_s
        self.write_line = write_line
        self.bar = bar
        #: the terminal's own descriptor (closed by the view once the thread has ended)
        self.out = out
        known = [expected[nodeid] for nodeid in nodeids if nodeid in expected]
        #: durations of tests with none recorded are taken to be the mean of those recorded
        mean_s = sum(known) / len(known) if known else 0.0
        self._expected = [expected.get(nodeid, mean_s) for nodeid in nodeids]
        #: the expected seconds of the tests not replayed yet, and those already taken off
        self._expected_left_s = sum(self._expected)
        self._counted: set[int] = set()
        self._planned = len(known) * 2 >= len(nodeids) > 0  # enough is known to plan with
        self._reported_slow: set[tuple[str, str, float]] = set()
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: why the thread ended early (an error while it looked), for the summary
        self.failure = ""
        #: held while the thread looks: a fork waits for it (``_before_fork``)
        self.looking = threading.Lock()

    # -- the main thread --------------------------------------------------------------------
    def start(self) -> None:
        if self.bar is not None:
            self.bar.open()
        self.resume()

    def resume(self) -> None:
        """A thread looks again (after ``pause``, or the first time)."""
        if self.failure:
            return  # (it ended on an error: the summary says so)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="parproc-progress", daemon=True)
        # A fork waits until the thread is between two looks (``_before_fork``): then it
        # holds nothing a forked child could need.
        _guard_forks()
        _running.append(self)
        allow_fork_beside(self._thread)
        self._thread.start()

    def pause(self) -> None:
        """Called with the lock held: the thread ends at its next look (``join`` waits)."""
        self._stop.set()
        if self in _running:
            _running.remove(self)

    def stop(self) -> None:
        """Called with the lock held: the thread ends at its next look; the status row goes."""
        self.pause()
        if self.bar is not None:
            self.bar.close()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- the thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        tick_s = BAR_TICK_S if self.bar is not None else min(LINES_TICK_S, self.slow_s / 4)
        tick_s = max(MIN_TICK_S, tick_s)
        while not self._stop.is_set():
            if self.lock.acquire(timeout=tick_s):
                try:
                    with self.looking:
                        if not self._stop.is_set():
                            self._look()
                except Exception as error:
                    # The run goes on without its progress: a warning from this thread would be
                    # charged to a test (and fail it under -W error). The summary says why.
                    self.failure = f"{type(error).__name__}: {error}"
                    return
                finally:
                    self.lock.release()
            self._stop.wait(tick_s)

    def _look(self) -> None:
        now = time.time()
        workers = self.workers_now()
        finished = workers.finished
        entries = [
            (worker_id, self.nodeids[index], started)
            for worker_id, (index, started) in workers.running.items()
            # (a slot read after its test's report was replayed: that test is over)
            if 0 <= index < len(self.nodeids) and index not in finished
        ]
        running = []
        for worker_id, nodeid, started in entries:
            running.append((worker_id, nodeid, max(0.0, now - started)))
            key = (worker_id, nodeid, started)
            if now - started >= self.slow_s and key not in self._reported_slow:
                self._reported_slow.add(key)
                self.write_line(slow_line(worker_id, nodeid, self.slow_s))
        if self.bar is not None:
            total = len(self.nodeids)
            if len(finished) != len(self._counted):  # (only the tests replayed since the last)
                expected = self._expected
                new = finished - self._counted
                self._expected_left_s -= sum(expected[index] for index in new)
                self._counted |= new
            counts = Counts(
                min(total, max(len(finished), workers.done)), workers.failed, self._expected_left_s
            )
            width = self.bar.size().columns - 1
            self.bar.draw(status_text(counts, total, self._left_s(counts, running), running, width))

    def _left_s(self, counts: Counts, running: list[tuple[str, str, float]]) -> float | None:
        """The time left: the recorded durations of the tests not done, less what the running
        ones have spent, shared by the workers; without enough recorded, the pace so far."""
        left = len(self.nodeids) - counts.done
        if left <= 0:
            return 0.0
        if self._planned:
            spent = sum(elapsed for _, _, elapsed in running)
            return max(0.0, counts.expected_left_s - spent) / self.n_workers
        elapsed = time.monotonic() - self._started
        if counts.done == 0 or elapsed < 1.0:
            return None
        return elapsed * left / counts.done


#: the progress of the run going on (one at a time; a list for the fork hooks' sake)
_running: list[Progress] = []
#: how long a fork waits for the progress thread to finish a look (a look takes milliseconds:
#: longer, and something is wrong with the terminal; the fork goes on)
FORK_WAIT_S = 2.0
_fork_locks: list[threading.Lock] = []


def _guard_forks() -> None:
    """Once per process: forks wait for the running progress's lock (``os.register_at_fork``
    hooks cannot be removed, so they look for the progress of the moment)."""
    if getattr(_guard_forks, "done", False):
        return
    _guard_forks.done = True  # type: ignore[attr-defined]
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_forget_in_child
    )


def _before_fork() -> None:
    for progress in list(_running):
        if progress.looking.acquire(timeout=FORK_WAIT_S):
            _fork_locks.append(progress.looking)


def _after_fork() -> None:
    while _fork_locks:
        _fork_locks.pop().release()


def _forget_in_child() -> None:
    """A forked child has no progress thread: its forks wait for nothing."""
    _running.clear()
    _fork_locks.clear()


def slow_line(worker_id: str, nodeid: str, slow_s: float) -> str:
    return f"parproc: SLOW [> {slow_s:g} s] {nodeid} on {worker_id}"


def status_text(
    counts: Counts,
    total: int,
    left_s: float | None,
    running: list[tuple[str, str, float]],
    width: int,
) -> str:
    """One line: ``parproc 120/800 | 2 failed | ~40 s left | w1 12 s test_x.py::test_y | ...``,
    the longest-running tests first, node ids cut from the left to fit ``width``."""
    head = f"parproc {counts.done}/{total}"
    if counts.failed:
        head += f" | {counts.failed} failed"
    if left_s is not None:
        head += f" | ~{_duration(left_s)} left"
    if not running and counts.done == 0:
        return (head + " | starting")[:width]
    shown = sorted(running, key=lambda entry: -entry[2])
    room = width - len(head)
    # As many as fit with at least MIN_NAME characters of their node id, sharing the room.
    for count in range(len(shown), -1, -1):
        tail = f" | +{len(shown) - count} more" if count < len(shown) else ""
        share = (room - len(tail)) // count if count else 0
        needed = max((len(_prefix(entry)) for entry in shown[:count]), default=0) + MIN_NAME
        if count == 0 or share >= needed:
            break
    widths = _shares(
        [len(_prefix(entry)) + len(entry[1]) for entry in shown[:count]], share * count
    )
    parts = []
    for entry, room_for in zip(shown[:count], widths, strict=True):
        prefix = _prefix(entry)
        fits = room_for - len(prefix)
        nodeid = entry[1]
        parts.append(prefix + (nodeid if len(nodeid) <= fits else "..." + nodeid[-(fits - 3) :]))
    return (head + "".join(parts) + tail)[:width]


def _shares(needs: list[int], room: int) -> list[int]:
    """Room for each of ``needs``: all it needs where that fits, the rest shared equally among
    those that need more (what a short one leaves goes to the longer ones)."""
    given = [0] * len(needs)
    left = room
    pending = sorted(range(len(needs)), key=lambda position: needs[position])
    while pending:
        even = left // len(pending)
        position = pending[0]
        if needs[position] <= even:
            given[position] = needs[position]
            left -= needs[position]
            pending.pop(0)
            continue
        for position in pending:
            given[position] = even
        break
    return given


def _prefix(entry: tuple[str, str, float]) -> str:
    return f" | {entry[0]} {_duration(entry[2])} "


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return (
        f"{minutes} min {rest:02d} s"
        if minutes < 60
        else f"{minutes // 60} h {minutes % 60:02d} min"
    )


def write_line_through(terminal: Any, writer: Any) -> Callable[[str], None]:
    """Lines between pytest's own: through its terminal reporter, which writes the file's name
    again after (a line of dots is ended first: the reporter does that only where it wrote a
    file's name, not under -q)."""

    def write(line: str) -> None:
        terminal.ensure_newline()
        if writer.width_of_current_line:
            terminal.write("\n")
        terminal.write_line(line, yellow=True)
        terminal.flush()  # (a pipe's buffer would keep it until the end)

    return write
