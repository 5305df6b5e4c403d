"""The run's events made into the page's and the trace's data (``report.timeline``), from
stand-in reports: lanes and their notes, made-up times, the summary."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pytest_parproc.plugin.report.events import RunEvents
from pytest_parproc.plugin.report.page import write_page
from pytest_parproc.plugin.report.timeline import RunFacts, timeline_data
from pytest_parproc.plugin.report.trace import write_trace


def report(nodeid: str, when: str, start: float, stop: float, outcome: str = "passed") -> Any:
    return SimpleNamespace(nodeid=nodeid, when=when, start=start, stop=stop, outcome=outcome)


def run_of(*tests: tuple[str, str, float, float]) -> RunEvents:
    """Tests as (lane, node id, start, stop), each with three phases, in a run from 100 s."""
    events = RunEvents(100.0)
    events.loop_started = 100.5
    for lane, nodeid, start, stop in tests:
        third = (stop - start) / 3
        for number, when in enumerate(("setup", "call", "teardown")):
            begin = start + number * third
            events.report(report(nodeid, when, begin, begin + third), lane)
    events.ended = 110.0
    return events


def test_lanes_in_order_and_replacements_named_for_what_they_replaced() -> None:
    events = run_of(
        ("w0", "t.py::a", 101.0, 102.0),
        ("w1", "t.py::b", 101.0, 103.0),
        ("w2", "t.py::c", 103.0, 104.0),
        ("w3", "t.py::d", 106.0, 107.0),
    )
    events.worker("w0", 10, 100.5, 100.9)
    events.worker("w1", 11, 100.5, 100.9)
    events.worker("w2", 12, 102.5, 102.9)  # retired w0's successor: before any death
    events.mark("w1", "crash", "w1 was killed")
    events.markers[0] = events.markers[0].__class__("w1", "crash", 105.0, "w1 was killed")
    events.worker("w3", 13, 105.5, 105.9)  # after w1 died
    data = timeline_data(events, RunFacts("loky", 2), "a run")
    lanes = {lane["id"]: lane for lane in data["lanes"]}
    assert [lane["id"] for lane in data["lanes"]] == ["main", "w0", "w1", "w2", "w3"]
    assert lanes["w0"]["note"] == "" and lanes["w0"]["label"] == "w0 (pid 10)"
    assert lanes["w2"]["note"] == "replacement: started after a worker retired (--par-max-* limits)"
    assert lanes["w3"]["note"] == "replacement: started after w1 ended (crash or time limit)"
    assert lanes["w3"]["startup"] == [5.5, 5.9]


def test_made_up_times_never_overlap_the_next_test_of_the_lane() -> None:
    events = run_of(("w0", "t.py::a", 101.0, 102.0), ("w0", "t.py::b", 102.0, 103.0))
    # a report the main process made (start 0): the test died; it lasts until then
    events.report(report("t.py::c", "setup", 102.5, 102.6), "w0")
    events.report(report("t.py::c", "call", 0.0, 0.0, "failed"), "w0")
    events.flag("t.py::c", "crash")
    events.mark("w0", "crash", "died")
    data = timeline_data(events, RunFacts("loky", 2), "a run")
    spans = sorted(
        (phase[1], phase[2]) for test in data["tests"] for phase in test[5] if test[0] == 1
    )
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end
    crashed = next(test for test in data["tests"] if test[1] == "t.py::c")
    assert crashed[2] == "crashed" and crashed[6] == "crash"


def test_the_summary_names_the_longest_tests_and_the_idle_time_at_the_end() -> None:
    events = run_of(
        ("w0", "t.py::a", 101.0, 105.0),
        ("w1", "t.py::b", 101.0, 102.0),
        ("w1", "t.py::c", 102.0, 103.5),
    )
    summary = timeline_data(events, RunFacts("loky", 2), "a run")["summary"]
    assert [nodeid for nodeid, _, _ in summary["longest"]] == ["t.py::a", "t.py::c", "t.py::b"]
    assert summary["idle_at_end"] == [["w0", 0.0], ["w1", 1.5]]
    assert summary["idle_at_end_s"] == 1.5
    assert summary["speedup"] == round(6.5 / 9.5, 2)  # summed test time / the test loop's time
    threads = timeline_data(events, RunFacts("threading", 2, "threads share one GIL"), "a run")
    assert threads["speedup"] is None and threads["no_speedup"] == "threads share one GIL"


def test_times_that_are_not_numbers_and_odd_node_ids_still_make_valid_files(
    tmp_path: Path,
) -> None:
    """A plugin's report may carry no time, NaN or infinity; a node id may hold quotes,
    ``</script>`` or (from a path that is not UTF-8) a lone surrogate: both files stay JSON."""
    events = RunEvents(100.0)
    events.loop_started = 100.0
    odd = 't.py::test["q\\\\</script>\\udce9]'
    events.report(report(odd, "setup", 101.0, 101.5), "w0")
    events.report(report(odd, "call", math.nan, math.inf), "w0")
    events.report(report(odd, "teardown", 102.0, -math.inf), "w0")
    events.report(report("t.py::b", "setup", math.inf, 103.0), "w1")
    events.ended = 104.0
    data = timeline_data(events, RunFacts("loky", 2), "a run")
    write_page(tmp_path / "page.html", data)
    write_trace(tmp_path / "trace.json", data)
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    (script,) = re.findall(r'id="parproc-data">(.*?)</script>', page, re.S)
    tests = json.loads(script)["tests"]
    assert [test[1] for test in tests] == [odd, "t.py::b"]
    for test in tests:
        for _, begin, stop, _ in test[5]:
            assert math.isfinite(begin) and math.isfinite(stop) and stop >= begin
    trace = json.loads((tmp_path / "trace.json").read_text(encoding="utf-8"))
    assert {event["name"] for event in trace["traceEvents"] if event["ph"] == "X"} >= {odd}
