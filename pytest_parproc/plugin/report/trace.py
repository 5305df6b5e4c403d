"""The run as a Chrome Trace Event file (Perfetto, chrome://tracing): one process, a thread
per lane (the main process's own costs, shared fixtures, each worker, the main thread's tests),
a complete event per test phase, instant events for crashes and time limits."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from .timeline import Tests

#: the trace's one process id (the lanes are its threads)
PID = 1


def trace_lines(data: dict[str, Any]) -> Iterator[str]:
    """The events of the page's data (``timeline.timeline_data``), each a JSON object; times
    in microseconds from the run's start (a test phase's in whole ones). Written as text: a
    run has three events per test, and building a dictionary for each costs several times
    more."""
    lanes = data["lanes"]
    dump = encode_basestring  # (the C encoder of a JSON string; json.dumps costs 5x more)
    yield _event({"name": "process_name", "ph": "M", "pid": PID, "args": {"name": data["title"]}})
    for number, lane in enumerate(lanes):
        label = lane["label"] + (f" ({lane['note']})" if lane.get("note") else "")
        meta = {"ph": "M", "pid": PID, "tid": number}
        yield _event({"name": "thread_name", **meta, "args": {"name": label}})
        yield _event({"name": "thread_sort_index", **meta, "args": {"sort_index": number}})
        startup = lane.get("startup")
        if startup:
            yield _complete("start-up", "startup", startup[0], startup[1], number, {})
    workers = [dump(lane["id"]) for lane in lanes]
    tests = data["tests"]
    # (a run's tests keep their phases in the run's clock: see ``timeline.Tests``)
    started = tests.started if isinstance(tests, Tests) else 0.0
    rows = (
        tests.rows
        if isinstance(tests, Tests)
        else [(test[0], test[1], test[2], test[5], test[6]) for test in tests]
    )
    for lane_number, nodeid, outcome, phases, flag in rows:
        # What is the same for each phase of the test, once; times in whole microseconds.
        head = f'{{"name":{dump(nodeid)},"cat":"'
        middle = f',"pid":{PID},"tid":{lane_number},"args":{{"outcome":"'
        flagged = f',"flag":"{flag}"' if flag else ""
        tail = f'","test_outcome":"{outcome}","worker":{workers[lane_number]}{flagged}}}}}'
        for when, begin, stop, phase_outcome in phases:
            yield (
                f'{head}{when}","ph":"X","ts":{int((begin - started) * 1e6)},'
                f'"dur":{int((stop - begin) * 1e6)}{middle}{phase_outcome}{tail}'
            )
    for lane_number, name, begin, stop in data["events"]:
        yield _complete(name, "parproc", begin, stop, lane_number, {})
    for lane_number, kind, moment, text in data["markers"]:
        yield _event(
            {
                "name": kind,
                "cat": "parproc",
                "ph": "i",
                "s": "t",
                "ts": round(moment * 1e6, 1),
                "pid": PID,
                "tid": lane_number,
                "args": {"text": text},
            }
        )


def _event(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


def _complete(
    name: str, category: str, begin: float, stop: float, thread: int, arguments: dict[str, Any]
) -> str:
    return _event(
        {
            "name": name,
            "cat": category,
            "ph": "X",
            "ts": round(begin * 1e6, 1),
            "dur": round(max(0.0, stop - begin) * 1e6, 1),
            "pid": PID,
            "tid": thread,
            "args": arguments,
        }
    )


def write_trace(path: Path, data: dict[str, Any]) -> None:
    """Write the trace next to its final place, then move it there: a reader never sees half."""
    other = {
        "tool": "pytest-parproc",
        "backend": data["backend"],
        "n_jobs": data["n_jobs"],
        "started": data["started"],
        "wall_s": data["wall_s"],
    }
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        # (a node id from a path that is not UTF-8 holds lone surrogates: written escaped)
        with open(partial, "w", encoding="utf-8", errors="backslashreplace") as file:
            file.write('{"traceEvents":[\n')
            file.write(",\n".join(trace_lines(data)))
            file.write(f'\n],"displayTimeUnit":"ms","otherData":{_event(other)}}}\n')
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
