"""The run's events as the main process learns them: each test's phases with their times and
the worker that ran them, the main process's own costs, worker start-ups, crashes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

#: the lane of the main process's own costs (collection, planning, replay)
MAIN_LANE = "main"
#: the lane of the tests that ran in the main thread (a serial run, the threading runner's
#: serial lane, tests that run alone after the parallel part)
SERIAL_LANE = "serial"
#: the lane of the shared fixtures' set-ups and teardowns
SHARED_LANE = "shared"
#: two spans of the same name on the same lane this close together are one (replays)
MERGE_GAP_S = 0.001
#: no report's time is later than this (the year 5138): past it, or not a number, it is made up
LATEST = 1e11


@dataclass
class TestRow:
    """One test: the lane of its first report, and each phase as ``(when, start, stop,
    outcome)`` in the run's clock (``time.time()``)."""

    lane: str
    phases: list[tuple[str, float, float, str]] = field(default_factory=list)
    #: "crash" (its worker died while running it) or "timeout" (it ran past --par-timeout)
    flag: str = ""


@dataclass
class WorkerLane:
    pid: int
    #: when the worker process started, and when its session was ready to run tests
    started_at: float | None = None
    ready_at: float | None = None
    address: str = ""
    #: when the main process first heard of it
    first_seen: float = 0.0


@dataclass(frozen=True)
class Marker:
    lane: str
    kind: str  # "crash" or "timeout"
    at: float
    text: str


class RunEvents:
    """What a run's page and trace are made of."""

    def __init__(self, started: float) -> None:
        self.started = started
        self._reports: list[tuple[str, pytest.TestReport, float]] = []
        self._tests: dict[str, TestRow] = {}
        #: node id -> "crash" or "timeout"
        self._flags: dict[str, str] = {}
        #: ``[lane, name, start, stop]``
        self.spans: list[list[object]] = []
        self.markers: list[Marker] = []
        self.workers: dict[str, WorkerLane] = {}
        #: when the test loop began and ended
        self.loop_started: float | None = None
        self.ended: float | None = None

    def report(self, report: pytest.TestReport, lane: str) -> None:
        """A report as it is logged in the main process (replayed, or made here): kept as it
        is, read at the end (``tests``), so that a test costs the main process little more."""
        self._reports.append((lane, report, time.time()))

    @property
    def tests(self) -> dict[str, TestRow]:
        """Each test that reported, by node id, in the order of its first report."""
        tests = self._tests
        # pytest 9.2 keeps a report's node id as a parsed ``NodeId`` (``_id``), and builds the
        # string on each access; a test's reports share the item's one (``report_codec``).
        last_id: object = None
        nodeid = ""
        for lane, report, logged_at in self._reports:
            fields = report.__dict__
            node = fields.get("_id")
            if node is None or node is not last_id:
                nodeid, last_id = report.nodeid, node
            row = tests.get(nodeid)
            if row is None:
                row = tests[nodeid] = TestRow(lane)
            start = fields.get("start", 0.0)
            stop = fields.get("stop", 0.0)
            # (comparisons: a time that is not a number, or not finite, fails them)
            if not 0.0 < start < LATEST:
                # Made by the main process for a test whose worker could not report it (a
                # crash, a time limit): it lasted until then, as far as this process knows.
                stop = logged_at
                start = row.phases[-1][2] if row.phases else stop
            if not start <= stop < LATEST:
                stop = start
            outcome: str = report.outcome
            if "wasxfail" in fields:
                outcome = "xfailed" if outcome == "skipped" else "xpassed"
            row.phases.append((report.when, start, stop, outcome))
        self._reports.clear()
        for nodeid, kind in self._flags.items():
            if nodeid in tests:
                tests[nodeid].flag = kind
        return tests

    def flag(self, nodeid: str, kind: str) -> None:
        self._flags[nodeid] = kind

    def mark(self, lane: str, kind: str, text: str) -> None:
        self.markers.append(Marker(lane, kind, time.time(), text))

    def worker(
        self,
        worker_id: str,
        pid: int,
        started_at: float | None,
        ready_at: float | None,
        address: str = "",
    ) -> None:
        lane = self.workers.get(worker_id)
        if lane is None:
            lane = self.workers[worker_id] = WorkerLane(pid, first_seen=time.time())
        if ready_at is not None and lane.ready_at is None:
            lane.started_at, lane.ready_at = started_at, ready_at
        lane.address = lane.address or address

    def add_span(self, lane: str, name: str, start: float, stop: float) -> None:
        last = self.spans[-1] if self.spans else None
        if (
            last is not None
            and last[0] == lane
            and last[1] == name
            and start - float(last[3]) < MERGE_GAP_S  # type: ignore[arg-type]
        ):
            last[3] = stop
            return
        self.spans.append([lane, name, start, stop])

    def span(self, name: str, lane: str = MAIN_LANE) -> Span:
        return Span(self, name, lane)


class Span:
    """Times what runs inside it onto a lane (a class, not a generator: the threading runner
    enters one per test's replay)."""

    __slots__ = ("events", "lane", "name", "start")

    def __init__(self, events: RunEvents, name: str, lane: str) -> None:
        self.events, self.name, self.lane = events, name, lane
        self.start = 0.0

    def __enter__(self) -> None:
        self.start = time.time()

    def __exit__(self, *exception: object) -> None:
        self.events.add_span(self.lane, self.name, self.start, time.time())


def outcome_of(row: TestRow) -> str:
    """One word for a test, as the page colours it: its flag, else what pytest would count."""
    if row.flag:
        return "crashed" if row.flag == "crash" else "timeout"
    phases = row.phases
    if len(phases) == 3 and phases[0][3] == phases[1][3] == phases[2][3] == "passed":
        return "passed"  # (most tests: the rest is for the others)
    call = [outcome for when, _, _, outcome in row.phases if when == "call"]
    around = [outcome for when, _, _, outcome in row.phases if when != "call"]
    if call and call[-1] == "failed":
        return "failed"
    if "failed" in around:
        return "error"
    if call:
        return call[-1]
    for outcome in around:
        if outcome in ("skipped", "xfailed"):
            return outcome
    return "passed"
