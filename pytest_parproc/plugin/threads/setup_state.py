"""Which collection nodes are set up while tests run in threads of one process (pytest's
``SetupState`` keeps one stack for one test at a time), and the test each thread runs; the
fixture values are in ``fixtures``. The package docstring explains the whole approach.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pytest

if sys.version_info < (3, 11):  # pragma: no cover - pytest depends on the backport there
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

#: What pytest's SetupState catches from a set-up or a finalizer (``pytest.exit`` raises an
#: Exception too); KeyboardInterrupt and the like go straight through, as there.
OUTCOMES = (Exception, pytest.skip.Exception, pytest.fail.Exception)

#: The bookkeeping of set-up state runs under this lock (a collector's own ``setup()`` under a
#: lock of that collector).
shared_lock = threading.RLock()


class ThreadContext(threading.local):
    """The test the current thread runs, and which fixture value it sees for each fixture."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None
        #: fixturedef -> slot key, for every fixture this thread's current test has set up
        self.resolved: dict[object, Hashable] = {}
        #: fixturedef -> slot key while its execute() or finish() runs on this thread
        self.overrides: dict[object, Hashable] = {}


context = ThreadContext()


@contextmanager
def running(item: pytest.Item | None) -> Iterator[None]:
    """Mark ``item`` as the test this thread runs (fixture lookups and teardown use it)."""
    context.item, context.resolved = item, {}
    try:
        yield
    finally:
        context.item, context.resolved = None, {}


@dataclass(frozen=True)
class SegmentKey:
    """A segment of the plan (tests that share the parameters of wider fixtures), counted like
    a collector: its last test to start ends it."""

    number: int


@dataclass
class _Collector:
    """A collector that is set up: its finalizers, and the error its set-up raised, if any."""

    finalizers: list[Callable[[], object]]
    error: BaseException | None = None
    traceback: TracebackType | None = None
    #: its set-up has ended (or failed): the tests after its first read it with no lock
    done: bool = False


@dataclass
class _Waiting:
    """Seconds a test spent waiting for the others of a collector or segment, and since when
    it waits now (None: it does not)."""

    total_s: float = 0.0
    since: float | None = None


class ConcurrentSetupState:
    """Stands in for ``session._setupstate`` while tests run in threads.

    A collector (session, package, module, class) is set up once, by the first test that needs
    it, and torn down in the teardown of its last test, deepest first, as in a serial run: the
    last of its tests to start waits there for the others to finish (they started before it,
    so they do not need its thread), and its report gets the collector's teardown errors. Each
    running test keeps its own finalizers. A collector whose set-up failed re-raises that error
    for each of its tests, as pytest's SetupState does.
    """

    def __init__(
        self,
        items: Sequence[pytest.Item],
        segments: Sequence[Sequence[int]],
        end_segment: Callable[[int], list[BaseException]],
    ) -> None:
        """``segments``: indices of ``items`` in the order they will be started, in segments
        that run one after the other (tests that share parameters of wider fixtures). The last
        test of a segment calls ``end_segment(number)`` in its teardown once the others
        finished (to tear down what the next segment needs other parameters of), except after
        the last."""
        #: collector or segment -> how many of its tests have not ended
        self._remaining: dict[Any, int] = {}
        #: collector or segment -> its last test to be started
        self._last: dict[Any, Any] = {}
        self._segment_of: dict[Any, SegmentKey] = {}
        for number, segment in enumerate(segments):
            key = SegmentKey(number)
            for index in segment:
                item = items[index]
                self._segment_of[item] = key
                for node in [key, *item.listchain()[:-1]]:
                    self._remaining[node] = self._remaining.get(node, 0) + 1
                    self._last[node] = item
        self._segments = len(segments)
        self._end_segment = end_segment
        self._counted: set[Any] = set()
        self._finished = threading.Condition(shared_lock)
        #: finalizers of tests that never got to their teardown (pytest.exit): run at the end
        self._orphans: list[tuple[Any, list[Callable[[], object]]]] = []
        #: collectors set up, in set-up order
        self._nodes: dict[Any, _Collector] = {}
        self._items: dict[Any, list[Callable[[], object]]] = {}
        self._setup_locks: dict[Any, threading.Lock] = {}
        #: tests left running past their time limit
        self._abandoned: set[Any] = set()
        #: test -> its waits for other tests (not its own time: see ``waited_s``)
        self._waited: dict[Any, _Waiting] = {}
        #: tests whose call failed on a thread, to be run again alone (``confirm``): the
        #: collectors they are in stay set up for that run, as their fixtures' values
        self._confirming: set[Any] = set()
        #: collector -> how many of its tests are still to be run again alone
        self._kept: dict[Any, int] = {}
        #: the test running again alone now
        self._rerun: Any = None
        #: segments whose end the main thread does, after their tests run again alone
        self._segments_left: set[int] = set()
        self.stack = _ActiveNodes(self)

    def is_node_active(self, node: Any) -> bool:
        return node in self._nodes or node in self._items

    def setup(self, item: pytest.Item) -> None:
        __tracebackhide__ = True  # a fixture's error shows the user's frames, as serially
        for node in item.listchain()[:-1]:
            # Set up already (most tests): read with no lock, where threads would queue for it
            # on every test. (A dict read is atomic, and ``done`` is set after the set-up.)
            state = self._nodes.get(node)
            if state is None or not state.done:
                state = self._set_up(node)
            if state is not None and state.error is not None:
                raise state.error.with_traceback(state.traceback)
        self._items[item] = [item.teardown]
        item.setup()

    def _set_up(self, node: Any) -> _Collector | None:
        """Set ``node`` up, or wait for the thread doing it; None when this thread did."""
        __tracebackhide__ = True
        # A lock per collector, not the shared one: a set-up that hangs (past --par-timeout)
        # holds up the tests of that collector only.
        with self._setup_lock(node):
            with shared_lock:
                state = self._nodes.get(node)
                if state is None:
                    collector = self._nodes[node] = _Collector([node.teardown])
            if state is not None:
                return state
            try:
                node.setup()
            except OUTCOMES as error:
                collector.error, collector.traceback = error, error.__traceback__
                raise
            finally:
                collector.done = True
        return None

    def _setup_lock(self, node: Any) -> threading.Lock:
        found = self._setup_locks.get(node)
        if found is not None:
            return found
        with shared_lock:
            return self._setup_locks.setdefault(node, threading.Lock())

    def addfinalizer(self, finalizer: Callable[[], object], node: Any) -> None:
        # No lock: a test adds to its own list, or to a collector it keeps set up until it ends
        # (a list's append is atomic).
        assert callable(finalizer)
        finalizers = self._items.get(node)
        if finalizers is None:
            collector = self._nodes.get(node)
            if collector is None:
                raise AssertionError(f"{node!r} is not set up: cannot add a finalizer to it")
            finalizers = collector.finalizers
        finalizers.append(finalizer)

    def teardown_exact(self, nextitem: pytest.Item | None) -> None:
        """Tear down this thread's test, then (as the last test of its segment, or of a
        collector, once the others finished) what ends with it; with no current test (pytest's
        own ``pytest_sessionfinish``), everything still set up."""
        current = context.item
        if current is None:
            self.teardown_all()
            return
        item: pytest.Item = current
        try:
            exceptions = _run_finalizers(item, self._items.pop(item, []))
        finally:
            self._count_down(item)  # whatever escaped, the tests waiting for this one go on
        if item in self._abandoned:
            # Left running past its limit, ending late: what it shares is no longer its part
            # (``segment_ended_without_its_last``; ``teardown_all``).
            _raise(exceptions)
            return
        segment = self._segment_of.get(item)
        last_of_segment = segment is not None and self._last.get(segment) is item
        if (
            segment is not None
            and last_of_segment
            and segment.number + 1 < self._segments
            and self._rerun is not item
        ):
            self._wait_for_others(segment)
            if any(self._segment_of.get(test) == segment for test in self._confirming):
                # its tests still to run again alone need this segment's parameters: the main
                # thread ends it after them (``segment_ended_without_its_last``)
                self._segments_left.add(segment.number)
            else:
                exceptions += self._end_segment(segment.number)
        done = []
        with self._finished:
            rerun = self._rerun is item
            for node in reversed(item.listchain()[:-1]):
                if node in self._kept:
                    if rerun:  # the last of its tests to run again alone tears it down
                        done += self._release_kept(node)
                    continue
                if self._last.get(node) is item:
                    self._wait_for_others(node)
                    waiting = sum(1 for test in self._confirming if node in test.listchain())
                    if waiting:
                        self._kept[node] = waiting  # set up still for their runs alone
                        continue
                    if node in self._nodes:
                        done.append((node, self._nodes.pop(node).finalizers))
        for node, finalizers in done:
            exceptions += _run_finalizers(node, finalizers)
        _raise(exceptions)

    def confirm_later(self, item: pytest.Item) -> None:
        """On a test's thread: its call failed, it will run again alone (``confirm``), and what
        it is in stays set up until then, so that the run alone gets the same values of its
        wider fixtures (set up once, as serially)."""
        with shared_lock:
            if item not in self._abandoned:  # (left running: its failure is not confirmed)
                self._confirming.add(item)

    def confirming(self, item: pytest.Item) -> bool:
        return item in self._confirming

    def unconfirm(self, item: pytest.Item) -> list[BaseException]:
        """A test marked for ``confirm_later`` that will not run again (the main thread reports
        its thread's run): the collectors kept for it are torn down if it was their last;
        returns the errors of those teardowns."""
        done = []
        with shared_lock:
            if item not in self._confirming:
                return []
            self._confirming.discard(item)
            for node in reversed(item.listchain()[:-1]):
                if node in self._kept:
                    done += self._release_kept(node)
        errors: list[BaseException] = []
        for node, finalizers in done:
            errors += _run_finalizers(node, finalizers)
        return errors

    def _release_kept(self, node: Any) -> list[tuple[Any, list[Callable[[], object]]]]:
        """One test kept ``node`` set up no longer (under ``shared_lock``): with the last,
        the node and its finalizers, to tear down."""
        self._kept[node] -= 1
        if self._kept[node] > 0:
            return []
        del self._kept[node]
        return [(node, self._nodes.pop(node).finalizers)] if node in self._nodes else []

    def rerunning(self, item: pytest.Item | None) -> None:
        """In the main thread: ``item`` runs again alone now (None: no test does)."""
        with shared_lock:
            self._confirming.discard(item)
            self._rerun = item

    def forget(self, item: pytest.Item) -> None:
        """A test that will not reach its teardown: it was never started (the run was stopping),
        or something cut its protocol short (pytest.exit, an error in a hook); its own
        finalizers, if any, run with ``teardown_all``. Safe to call more than once."""
        with self._finished:
            finalizers = self._items.pop(item, None)
            if finalizers:
                self._orphans.append((item, finalizers))
        self._count_down(item)

    def _count_down(self, item: pytest.Item) -> None:
        with self._finished:
            if item in self._counted:
                return
            self._counted.add(item)
            segment = self._segment_of.get(item)
            for node in [*([segment] if segment is not None else []), *item.listchain()[:-1]]:
                self._remaining[node] -= 1
            self._finished.notify_all()

    def abandon(self, item: pytest.Item) -> None:
        """A test left running past its time limit: the tests waiting for it go on. Its own
        finalizers stay with its thread. What it shares is not torn down by it, even if it
        ends later: a collector whose last test it was stays set up until ``teardown_all``,
        and the main thread ends its segment (``segment_ended_without_its_last``)."""
        with shared_lock:
            self._abandoned.add(item)
            self._confirming.discard(item)
        self._count_down(item)

    def segment_ended_without_its_last(self, number: int) -> bool:
        """Whether segment ``number``'s last test was left running, so that the segment's end
        (the next segment's parameters) is still to be done."""
        return (
            self._last.get(SegmentKey(number)) in self._abandoned or number in self._segments_left
        )

    def waited_s(self, item: pytest.Item | None) -> float:
        """Seconds ``item``'s thread has spent waiting for other tests to end (in its
        teardown): they have time limits of their own, so that is not its own time."""
        with shared_lock:
            waiting = self._waited.get(item, _Waiting())
        since = waiting.since
        return waiting.total_s + (time.monotonic() - since if since is not None else 0.0)

    def _wait_for_others(self, node: Any) -> None:
        """The tests of ``node`` started before this one, each on a thread of its own (or
        finished): they end without this thread."""
        item = context.item
        with self._finished:
            if self._remaining[node] <= 0:
                return
            waiting = self._waited.setdefault(item, _Waiting())
            waiting.since = time.monotonic()
            try:
                while self._remaining[node] > 0:
                    self._finished.wait()
            finally:
                waiting.total_s, waiting.since = self.waited_s(item), None

    def teardown_all(self) -> None:
        with shared_lock:
            done = self._orphans[::-1]
            done += [(node, state.finalizers) for node, state in self._nodes.items()][::-1]
            self._orphans = []
            self._nodes.clear()
        exceptions: list[BaseException] = []
        for node, finalizers in done:
            exceptions += _run_finalizers(node, finalizers)
        _raise(exceptions)


class _ActiveNodes:
    """``SetupState.stack`` as pytest's fixture code reads it: ``node in stack``."""

    def __init__(self, state: ConcurrentSetupState) -> None:
        self._state = state

    def __contains__(self, node: object) -> bool:
        return self._state.is_node_active(node)

    def __bool__(self) -> bool:
        return bool(self._state._nodes or self._state._items)


def _run_finalizers(node: Any, finalizers: list[Callable[[], object]]) -> list[BaseException]:
    errors: list[BaseException] = []
    while finalizers:
        try:
            finalizers.pop()()
        except OUTCOMES as error:
            errors.append(error)
    if len(errors) > 1:
        return [BaseExceptionGroup(f"errors while tearing down {node!r}", errors[::-1])]
    return errors


def _raise(exceptions: list[BaseException]) -> None:
    if len(exceptions) == 1:
        raise exceptions[0]
    if exceptions:
        raise BaseExceptionGroup("errors during test teardown", exceptions[::-1])
