"""The run's events made into what the page and the trace show: lanes in order, tests with
their phases on the run's clock, and the summary (busy shares, the longest tests, the idle time
at the end that a better plan would save)."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any, overload

from .events import MAIN_LANE, SERIAL_LANE, SHARED_LANE, RunEvents, TestRow, outcome_of

LANE_LABELS = {
    MAIN_LANE: ("main process", "collection, planning, replay"),
    SHARED_LANE: ("shared fixtures", "set up once, before the workers' first test"),
    SERIAL_LANE: ("main thread", "tests run one after another in this process"),
}


@dataclass(frozen=True)
class RunFacts:
    """What the controller knows of the run beside its events."""

    backend: str
    n_jobs: int
    #: why no speed-up is shown (threads, a serial run), or "" where one is
    no_speedup: str = ""


class Tests(Sequence[list[Any]]):
    """The page's tests, ``[lane index, node id, outcome, start, end, phases, flag]`` with
    times from the run's start, each made when asked for; ``json`` writes them all at once. A
    run has thousands: lists and rounded numbers for each, then their JSON, would cost a run of
    8,000 tiny tests about 2% of its time."""

    def __init__(self, started: float) -> None:
        self.started = started
        #: ``(lane index, node id, outcome, phases, flag)``, phases in the run's clock
        self.rows: list[tuple[int, str, str, list[tuple[str, float, float, str]], str]] = []

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, position: int) -> list[Any]: ...

    @overload
    def __getitem__(self, position: slice) -> list[list[Any]]: ...

    def __getitem__(self, position: int | slice) -> Any:
        if isinstance(position, slice):
            return [self[number] for number in range(*position.indices(len(self)))]
        lane, nodeid, outcome, phases, flag = self.rows[position]
        shown = [
            [when, begin - self.started, stop - self.started, verdict]
            for when, begin, stop, verdict in phases
        ]
        return [lane, nodeid, outcome, shown[0][1], shown[-1][2], shown, flag]

    def json(self) -> str:
        """The JSON array of all of them (microsecond precision)."""
        started = self.started
        encode = encode_basestring
        parts: list[str] = []
        append = parts.append
        for lane, nodeid, outcome, phases, flag in self.rows:
            shown = ",".join(
                [
                    f'["{when}",{begin - started:.6f},{stop - started:.6f},"{verdict}"]'
                    for when, begin, stop, verdict in phases
                ]
            )
            append(
                f'[{lane},{encode(nodeid)},"{outcome}",{phases[0][1] - started:.6f},'
                f'{phases[-1][2] - started:.6f},[{shown}],"{flag}"]'
            )
        return "[" + ",".join(parts) + "]"


def _worker_number(lane: str) -> int:
    number = lane[1:]
    return int(number) if lane[:1] == "w" and number.isdigit() else 1 << 30


def timeline_data(events: RunEvents, facts: RunFacts, title: str) -> dict[str, Any]:
    """The page's data (the schema is in ``page.py``'s docstring); the trace is built from it."""
    started = events.started
    ended = events.ended if events.ended is not None else started

    def at(moment: float) -> float:
        return round(moment - started, 6)

    rows = events.tests
    if events.markers or facts.backend == "dask":
        rows = _without_overlaps(rows)
    worker_lanes = {row.lane for row in rows.values()} | set(events.workers)
    worker_lanes -= {MAIN_LANE, SHARED_LANE, SERIAL_LANE}
    order = [MAIN_LANE]
    if any(span[0] == SHARED_LANE for span in events.spans):
        order.append(SHARED_LANE)
    order += sorted(worker_lanes, key=lambda lane: (_worker_number(lane), lane))
    if any(row.lane == SERIAL_LANE for row in rows.values()):
        order.append(SERIAL_LANE)
    index = {lane: position for position, lane in enumerate(order)}
    lanes = [_lane(lane, events, facts, at) for lane in order]

    tests = Tests(started)
    busy: dict[str, float] = {}
    last_end: dict[str, float] = {}
    longest: list[tuple[float, str, str]] = []
    test_time_s = 0.0
    for nodeid, row in rows.items():
        phases = row.phases
        if not phases:
            continue
        start, end = phases[0][1], phases[-1][2]
        lane = row.lane
        tests.rows.append((index[lane], nodeid, outcome_of(row), phases, row.flag))
        busy[lane] = busy.get(lane, 0.0) + (end - start)
        if end > last_end.get(lane, end - 1):
            last_end[lane] = end
        for _, begin, stop, _ in phases:
            test_time_s += stop - begin
        longest.append((end - start, nodeid, lane))
    wall_s = max(0.0, ended - started)
    loop_s = ended - events.loop_started if events.loop_started is not None else wall_s
    speedup = round(test_time_s / loop_s, 2) if loop_s > 0 and not facts.no_speedup else None
    workers_end = max((last_end[lane] for lane in last_end if lane in worker_lanes), default=0.0)
    idle_at_end: list[tuple[str, float]] = [
        (lane, round(workers_end - last_end[lane], 3))
        for lane in order
        if lane in worker_lanes and lane in last_end
    ]
    return {
        "title": title,
        "backend": facts.backend,
        "n_jobs": facts.n_jobs,
        "started": started,
        "wall_s": round(wall_s, 3),
        "test_time_s": round(test_time_s, 3),
        "speedup": speedup,
        "no_speedup": facts.no_speedup,
        "lanes": lanes,
        "tests": tests,
        "events": [
            [index[str(lane)], name, at(float(begin)), at(float(stop))]  # type: ignore[arg-type]
            for lane, name, begin, stop in events.spans
            if lane in index
        ],
        "markers": [
            [index[marker.lane], marker.kind, at(marker.at), marker.text]
            for marker in events.markers
            if marker.lane in index
        ],
        "summary": {
            "wall_s": round(wall_s, 3),
            "speedup": speedup,
            "busy": [
                [lane, round(busy[lane], 3), round(busy[lane] / wall_s, 3) if wall_s else 0.0]
                for lane in order
                if lane in busy
            ],
            "longest": [
                [nodeid, lane, round(seconds, 3)]
                for seconds, nodeid, lane in heapq.nlargest(10, longest)
            ],
            "idle_at_end": [list(entry) for entry in idle_at_end],
            "idle_at_end_s": round(sum(gap for _, gap in idle_at_end), 3),
        },
    }


def _lane(lane: str, events: RunEvents, facts: RunFacts, at: Any) -> dict[str, Any]:
    if lane in LANE_LABELS:
        label, note = LANE_LABELS[lane]
        return {"id": lane, "label": label, "kind": lane, "note": note}
    worker = events.workers.get(lane)
    if worker is None:  # a thread of this process
        return {"id": lane, "label": lane, "kind": "worker", "note": ""}
    where = f"{worker.address}/{worker.pid}" if worker.address else f"pid {worker.pid}"
    startup = None
    if worker.ready_at is not None:
        # (a forked worker's start is the fork, after collection; a worker that does not say
        # when it started is taken to have started with the test loop)
        loop_started = events.loop_started or events.started
        begin = max(events.started, worker.started_at or loop_started)
        startup = [at(begin), at(max(begin, worker.ready_at))]
    note = ""
    if _worker_number(lane) >= facts.n_jobs:
        # (a worker that sent nothing yet when it died: the first news of it)
        born = worker.started_at or worker.first_seen
        before = sorted({marker.lane for marker in events.markers if marker.at <= born})
        note = (
            f"replacement: started after {', '.join(before)} ended (crash or time limit)"
            if before
            else "replacement: started after a worker retired (--par-max-* limits)"
        )
    return {
        "id": lane,
        "label": f"{lane} ({where})",
        "kind": "worker",
        "note": note,
        "startup": startup,
    }


def _without_overlaps(tests: dict[str, TestRow]) -> dict[str, TestRow]:
    """The same tests, where a phase that starts before the previous one on its lane ended is
    moved to start then: only times that the main process made up (for a test whose worker
    died, or that ran past its limit) or a remote worker's clock can overlap."""
    by_lane: dict[str, list[tuple[float, str]]] = {}
    for nodeid, row in tests.items():
        if row.phases:
            by_lane.setdefault(row.lane, []).append((row.phases[0][1], nodeid))
    result: dict[str, TestRow] = {}
    for lane, starts in by_lane.items():
        cursor = float("-inf")
        for _, nodeid in sorted(starts):
            row = tests[nodeid]
            phases = []
            changed = False
            for when, begin, stop, outcome in row.phases:
                if begin < cursor:
                    begin, changed = cursor, True
                stop = max(stop, begin)
                phases.append((when, begin, stop, outcome))
                cursor = stop
            result[nodeid] = TestRow(lane, phases, row.flag) if changed else row
    return result
