"""The files of a run's timeline, from whole runs checked against what the run reported:
``--par-trace`` (Chrome Trace Event format: every test's every phase once, on the lane of the
worker that ran it, no two events of a lane at the same time, the main process's own costs on
its lane) and ``--par-report`` (the page, as headless Chromium draws it)."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from typing import Any

import pytest
from browser import drawn, require_browser
from compare import BACKENDS, run_suite

pytest_plugins = ["pytester"]

MIXED = """
import pytest

@pytest.mark.parametrize("n", range(6))
def test_pass(n):
    pass

def test_fail():
    assert 0

@pytest.mark.skip(reason="not today")
def test_skip():
    pass

@pytest.mark.xfail
def test_xfail():
    assert 0

@pytest.fixture
def broken():
    raise RuntimeError("no fixture")

def test_error(broken):
    pass
"""

#: a test that kills its worker, and one past the time limit (process backends only: on
#: threads a crash ends the run, and a test past its limit keeps its thread)
DEATHS = """
import os
import signal
import time

def test_crash():
    os.kill(os.getpid(), signal.SIGKILL)

def test_timeout():
    time.sleep(30)
"""

PHASES = ("setup", "call", "teardown")


def lanes_of(trace: dict[str, Any]) -> dict[int, str]:
    return {
        event["tid"]: event["args"]["name"]
        for event in trace["traceEvents"]
        if event["ph"] == "M" and event["name"] == "thread_name"
    }


def phase_events(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        event for event in trace["traceEvents"] if event["ph"] == "X" and event["cat"] in PHASES
    ]


def assert_no_overlap(trace: dict[str, Any]) -> None:
    by_lane: dict[int, list[tuple[float, float, str]]] = {}
    for event in trace["traceEvents"]:
        if event["ph"] == "X":
            end = event["ts"] + event["dur"]
            by_lane.setdefault(event["tid"], []).append((event["ts"], end, event["name"]))
    for lane, spans in by_lane.items():
        spans.sort()
        for (_, end, name), (start, _, following) in itertools.pairwise(spans):
            # (times are rounded to a tenth of a microsecond, or cut to whole ones)
            assert start >= end - 0.2, (lanes_of(trace)[lane], name, following, start, end)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_trace_has_every_phase_once_on_its_worker(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makepyfile(test_mixed=MIXED)
    args = ["--par-trace=trace.json"]
    if backend != "threading":
        pytester.makepyfile(test_deaths=DEATHS)
        args.append("--par-timeout=3")
    run = run_suite(pytester, *args, n_jobs=2, backend=backend)
    assert run.exitstatus == 1, run.output
    trace = json.loads((pytester.path / "trace.json").read_text())
    lanes = lanes_of(trace)
    events = phase_events(trace)

    # Every phase the run reported, once, with the outcome it reported.
    traced: dict[str, list[str]] = {}
    for event in events:
        traced.setdefault(event["name"], []).append(f"{event['cat']}:{event['args']['outcome']}")
    assert {nodeid: sorted(phases) for nodeid, phases in traced.items()} == {
        nodeid: sorted(phases) for nodeid, phases in run.tests.items()
    }
    counts = Counter((event["name"], event["cat"]) for event in events)
    assert set(counts.values()) == {1}

    # On the lane of a worker, named as in the timing table; each test on one lane.
    worker_lanes = {tid for tid, name in lanes.items() if name.startswith("w")}
    for tid in worker_lanes if backend != "threading" else ():  # (also one that sent nothing)
        assert re.match(r"w\d+ \(pid \d+\)", lanes[tid]), lanes[tid]
    for nodeid in traced:
        assert len({event["tid"] for event in events if event["name"] == nodeid}) == 1
    # (on threads, a test whose call failed runs again alone, in the main thread)
    main_thread = {tid for tid, name in lanes.items() if name.startswith("main thread")}
    assert {event["tid"] for event in events} <= worker_lanes | (
        main_thread if backend == "threading" else set()
    )
    for event in events:
        if event["tid"] not in main_thread:  # (its events say "serial")
            assert lanes[event["tid"]].startswith(event["args"]["worker"])
    assert_no_overlap(trace)

    # The main process's own costs, on its own lane.
    main = next(tid for tid, name in lanes.items() if name.startswith("main process"))
    costs = {event["name"] for event in trace["traceEvents"] if event.get("tid") == main}
    assert {"collection", "planning", "replay"} <= costs
    assert trace["otherData"]["backend"] == backend

    if backend != "threading":
        outcomes = {event["name"]: event["args"]["test_outcome"] for event in events}
        assert outcomes["test_deaths.py::test_crash"] == "crashed"
        assert outcomes["test_deaths.py::test_timeout"] == "timeout"
        marks = {event["name"] for event in trace["traceEvents"] if event["ph"] == "i"}
        assert marks == {"crash", "timeout"}
        # the replacement workers have lanes of their own, said to be replacements
        assert any("replacement" in name for name in lanes.values())


def expected_outcome(nodeid: str, phases: list[str]) -> str:
    """The page's word for a test, from the phases the run reported."""
    if nodeid.endswith("test_crash"):
        return "crashed"
    if nodeid.endswith("test_timeout"):
        return "timeout"
    outcomes = dict(phase.split(":") for phase in phases)
    if outcomes.get("call") == "failed":
        return "failed"
    if "failed" in outcomes.values():
        return "error"
    if "call" in outcomes:
        return outcomes["call"]
    return "skipped" if "skipped" in outcomes.values() else "passed"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_the_page_in_a_browser_has_every_worker_and_every_test(
    pytester: pytest.Pytester, backend: str
) -> None:
    require_browser()
    pytester.makepyfile(test_mixed=MIXED)
    args = ["--par-report=page.html", "--par-trace=trace.json"]
    if backend != "threading":
        pytester.makepyfile(test_deaths=DEATHS)
        args.append("--par-timeout=3")
    run = run_suite(pytester, *args, n_jobs=2, backend=backend)
    assert run.exitstatus == 1, run.output
    run.result.stdout.fnmatch_lines(["parproc: timeline page written to *page.html"])
    dom = drawn(pytester.path / "page.html")

    # A lane for each lane of the trace: every worker (and replacement), the main process.
    trace = json.loads((pytester.path / "trace.json").read_text())
    lane_names = lanes_of(trace)
    lanes = {node.attributes["data-lane"]: node for node in dom.with_class("lane")}
    assert len(lanes) == len(lane_names)
    workers = {name.split()[0] for name in lane_names.values() if name.startswith("w")}
    assert workers <= set(lanes) and "main" in lanes
    if backend != "threading":
        assert len(workers) >= 3  # two, and at least one replacement

    # A bar for every test, on the lane of the worker that ran it, coloured by its outcome.
    bars = {node.attributes["data-nodeid"]: node for node in dom.with_class("bar")}
    assert set(bars) == set(run.tests)
    worker_of = {event["name"]: event["args"]["worker"] for event in phase_events(trace)}
    for nodeid, phases in run.tests.items():
        bar = bars[nodeid]
        assert bar.lane == worker_of[nodeid]
        assert f"outcome-{expected_outcome(nodeid, phases)}" in bar.classes, (nodeid, bar)
        assert len(dom.children(bar)) == len(phases)  # a span per phase
    if backend != "threading":
        assert "crashed" in bars["test_deaths.py::test_crash"].classes
        assert "timed-out" in bars["test_deaths.py::test_timeout"].classes
        markers = [node.classes for node in dom.with_class("marker")]
        assert any("marker-crash" in classes for classes in markers)
        assert any("marker-timeout" in classes for classes in markers)
    assert "wall" in dom.text("summary")
