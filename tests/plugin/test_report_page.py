"""The ``--par-report`` page (``write_page``): self-contained, and what headless Chromium draws."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from browser import drawn, require_browser, screenshot

from pytest_parproc.plugin.report.page import write_page

OUTCOMES = ["passed", "failed", "error", "skipped", "xfailed", "xpassed", "crashed", "timeout"]
FLAG_CLASSES = {"crash": "crashed", "timeout": "timed-out"}
# A node id that ends the data's <script> element early unless the page escapes it.
HOSTILE_NODE_ID = 'test_x.py::test_y[</script><script>alert("x")</script><!--&amp;]'
DATA_BLOCK = re.compile(r'<script type="application/json" id="parproc-data">.*?</script>', re.S)


@pytest.fixture(scope="module")
def browser() -> str:
    return require_browser()


def summary(tests: list[list[Any]], lanes: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    busy: dict[str, float] = defaultdict(float)
    last_end: dict[str, float] = {}
    for lane, _, _, start, end, _, _ in tests:
        busy[lanes[lane]["id"]] += end - start
        last_end[lanes[lane]["id"]] = max(last_end.get(lanes[lane]["id"], 0.0), end)
    longest = sorted(tests, key=lambda test: test[4] - test[3], reverse=True)[:10]
    idle: list[tuple[str, float]] = [
        (lane, round(wall_s - end, 3)) for lane, end in last_end.items()
    ]
    return {
        "wall_s": wall_s,
        "speedup": 3.2,
        "busy": [
            [lane, round(seconds, 3), round(seconds / wall_s, 3)] for lane, seconds in busy.items()
        ],
        "longest": [
            [test[1], lanes[test[0]]["id"], round(test[4] - test[3], 3)] for test in longest
        ],
        "idle_at_end": [list(entry) for entry in idle],
        "idle_at_end_s": round(sum(gap for _, gap in idle), 3),
    }


def small_run() -> dict[str, Any]:
    """Three workers, the main process, shared fixtures and the serial lane; twenty tests with
    every outcome, one of them killed with its worker and one past its time limit."""

    def worker(number: int, pid: int, note: str, startup: list[float] | None) -> dict[str, Any]:
        label = f"w{number} (pid {pid})"
        return {
            "id": f"w{number}",
            "label": label,
            "kind": "worker",
            "note": note,
            "startup": startup,
        }

    lanes: list[dict[str, Any]] = [
        {"id": "main", "label": "main process", "kind": "main", "note": "collection, replay"},
        {"id": "shared", "label": "shared fixtures", "kind": "shared", "note": ""},
        worker(0, 1234, "", [0.01, 0.35]),
        worker(1, 1240, "", None),
        worker(2, 1250, "replacement: after w1", [3.0, 3.4]),
        {"id": "serial", "label": "main thread (serial lane)", "kind": "serial", "note": ""},
    ]
    tests: list[list[Any]] = []
    for number in range(20):
        lane = 2 + number % 4
        start = round(0.4 + (number // 4) * 2.2, 3)
        end = round(start + 0.5 + number * 0.07, 3)
        outcome = OUTCOMES[number % len(OUTCOMES)]
        flag = {"crashed": "crash", "timeout": "timeout"}.get(outcome, "")
        node_id = f"tests/test_{lane}.py::test_{outcome}_{number}"
        if number == 5:
            node_id = HOSTILE_NODE_ID
        phases = [
            ["setup", start, start + 0.05, "passed"],
            ["call", start + 0.05, end - 0.05, "passed"],
        ]
        if not flag:
            phases.append(["teardown", end - 0.05, end, "passed"])
        tests.append([lane, node_id, outcome, start, end, phases, flag])
    events = [
        [0, "collection", 0.0, 0.3],
        [0, "planning", 0.3, 0.32],
        [0, "replay", 11.8, 12.1],
        [1, "setup shared server", 0.32, 0.4],
    ]
    crash_test, timeout_test = tests[6], tests[7]
    markers = [
        [crash_test[0], "crash", crash_test[4], f"w2 was killed while running {crash_test[1]}"],
        [timeout_test[0], "timeout", timeout_test[4], "ran past --par-timeout=2"],
        [4, "start", 3.0, "w2 started"],
    ]
    return {
        "title": "pytest-parproc run: 20 tests, 3 workers (loky)",
        "backend": "loky",
        "n_jobs": 3,
        "started": 1764880000.25,
        "wall_s": 12.5,
        "test_time_s": 40.1,
        "speedup": 3.2,
        "lanes": lanes,
        "tests": tests,
        "events": events,
        "markers": markers,
        "summary": summary(tests, lanes, 12.5),
    }


def big_run(test_count: int = 100_000, lane_count: int = 16) -> dict[str, Any]:
    """``test_count`` short tests over ``lane_count`` workers, one phase each (a smaller file)."""
    lanes = [
        {"id": f"w{number}", "label": f"w{number}", "kind": "worker", "note": ""}
        for number in range(lane_count)
    ]
    tests: list[list[Any]] = []
    cursors = [0.5] * lane_count
    for number in range(test_count):
        lane = number % lane_count
        start = cursors[lane]
        end = round(start + 0.002 + (number % 7) * 0.001, 4)
        cursors[lane] = end
        outcome = "failed" if number % 997 == 0 else "passed"
        flag = ""
        if number == 50_000:
            outcome, flag = "crashed", "crash"
        node_id = f"tests/test_mod_{lane}.py::test_case[{number}]"
        tests.append([lane, node_id, outcome, start, end, [["call", start, end, outcome]], flag])
    wall_s = max(cursors) + 0.5
    return {
        "title": "big run",
        "backend": "loky",
        "n_jobs": lane_count,
        "started": 1764880000.0,
        "wall_s": wall_s,
        "test_time_s": wall_s * lane_count,
        "speedup": 15.0,
        "lanes": lanes,
        "tests": tests,
        "events": [],
        "markers": [],
        "summary": summary(tests, lanes, wall_s),
    }


def test_page_fetches_nothing_and_keeps_its_data_whole(tmp_path: Path) -> None:
    data = small_run()
    path = tmp_path / "run.html"
    write_page(path, data)
    page = path.read_text(encoding="utf-8")
    outside_data = DATA_BLOCK.sub("", page)
    for fetching in ("<script src", "<link", "url(", "http://", "https://", "@import"):
        assert fetching not in outside_data.lower()
    (block,) = DATA_BLOCK.findall(page)
    payload = block.split(">", 1)[1].rsplit("<", 1)[0]
    assert "<" not in payload and ">" not in payload and "&" not in payload
    assert json.loads(payload) == json.loads(json.dumps(data))


def test_page_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "run.html"
    path.write_text("old page")
    write_page(path, {"title": "T", "wall_s": float("nan"), "tests": [], "lanes": []})
    assert [entry.name for entry in tmp_path.iterdir()] == ["run.html"]
    (block,) = DATA_BLOCK.findall(path.read_text(encoding="utf-8"))
    assert '"wall_s":null' in block
    assert path.stat().st_mode & 0o644 == 0o644


@pytest.mark.slow
def test_small_run_draws_every_lane_test_phase_and_marker(tmp_path: Path, browser: str) -> None:
    data = small_run()
    path = tmp_path / "run.html"
    write_page(path, data)
    dom = drawn(path)
    lane_ids = [lane["id"] for lane in data["lanes"]]
    assert [node.attributes["data-lane"] for node in dom.with_class("lane")] == lane_ids

    bars = {node.attributes["data-nodeid"]: node for node in dom.with_class("bar")}
    assert len(bars) == len(data["tests"]) == len(dom.with_class("bar"))
    assert not dom.with_class("aggregate")
    for lane, node_id, outcome, _, _, phases, flag in data["tests"]:
        bar = bars[node_id]
        assert bar.lane == lane_ids[lane]
        assert f"outcome-{outcome}" in bar.classes
        assert (FLAG_CLASSES.get(flag) in bar.classes) == bool(flag)
        children = dom.children(bar)
        assert [child.classes for child in children] == [
            {"phase", f"phase-{phase[0]}"} for phase in phases
        ]

    markers = dom.with_class("marker")
    assert sorted(
        (node.lane, node.attributes["class"], node.attributes["title"]) for node in markers
    ) == sorted(
        (lane_ids[lane], f"marker marker-{kind}", text) for lane, kind, _, text in data["markers"]
    )
    events = [(node.lane, node.attributes["data-name"]) for node in dom.with_class("event")]
    assert sorted(events) == sorted((lane_ids[event[0]], event[1]) for event in data["events"])
    assert [node.lane for node in dom.with_class("startup")] == ["w0", "w2"]

    assert "12.5 s" in dom.text("summary-wall")
    assert "3.20\N{MULTIPLICATION SIGN}" in dom.text("summary-speedup")
    longest = dom.text("longest-table")
    for node_id, _, _ in data["summary"]["longest"]:
        assert " ".join(node_id.split()) in longest
    assert "w1 (pid 1240)" in dom.text("lane-table")
    assert "2025" in dom.text("run-info")
    assert {"outcome-" + outcome for outcome in OUTCOMES} <= {
        name for node in dom.with_class("swatch") for name in node.classes
    }


@pytest.mark.slow
def test_search_from_the_address_highlights_and_shows_the_first_match(
    tmp_path: Path, browser: str
) -> None:
    data = small_run()
    path = tmp_path / "run.html"
    write_page(path, data)
    dom = drawn(path, "#search=CRASHED&jump")
    matching = {test[1] for test in data["tests"] if "crashed" in test[1]}
    assert len(matching) == 2
    assert {node.attributes["data-nodeid"] for node in dom.with_class("match")} == matching
    assert "searching" in dom.by_id("timeline").classes
    assert dom.text("search-count") == "2 tests match"
    first = min((test for test in data["tests"] if test[1] in matching), key=lambda test: test[3])
    (selected,) = dom.with_class("selected")
    assert selected.attributes["data-nodeid"] == first[1]
    tooltip = dom.by_id("tooltip")
    assert "hidden" not in tooltip.attributes and "pinned" in tooltip.classes
    text = dom.text("tooltip")
    assert first[1] in text and "outcome crashed" in text and "setup 50.0 ms" in text
    assert "its worker died while running it" in text


@pytest.mark.slow
def test_hundred_thousand_tests_are_merged_into_few_elements(tmp_path: Path, browser: str) -> None:
    data = big_run()
    path = tmp_path / "big.html"
    write_page(path, data)
    dom = drawn(path, "#search=test_case[4242")
    assert len(dom.with_class("lane")) == 16
    bars = dom.with_class("bar")
    aggregates = [bar for bar in bars if "aggregate" in bar.classes]
    assert aggregates and len(bars) < 20_000
    assert sum(int(bar.attributes.get("data-count", "1")) for bar in bars) == 100_000
    assert all("data-nodeid" in bar.attributes for bar in bars if bar not in aggregates)
    assert any("outcome-crashed" in bar.classes for bar in aggregates)
    # test_case[4242] and [42420] to [42429]: at most one element each.
    assert 1 <= len(dom.with_class("match")) <= 11
    assert dom.text("search-count") == "11 tests match"


@pytest.mark.slow
def test_one_match_among_many_is_zoomed_into_until_it_has_its_own_bar(
    tmp_path: Path, browser: str
) -> None:
    path = tmp_path / "big.html"
    write_page(path, big_run(test_count=20_000, lane_count=4))
    dom = drawn(path, "#search=test_case[12345]&jump")
    (match,) = dom.with_class("match")
    assert match.attributes["data-nodeid"] == "tests/test_mod_1.py::test_case[12345]"
    assert "selected" in match.classes and "aggregate" not in match.classes


@pytest.mark.slow
@pytest.mark.parametrize(
    "data",
    [
        {
            "title": "nothing",
            "lanes": [{"id": "main", "label": "main", "kind": "main"}],
            "tests": [],
            "events": [[0, "collection", 0.0, 0.2]],
            "markers": [],
            "speedup": None,
            "backend": "threading",
            "summary": {"busy": [], "longest": [], "idle_at_end": []},
        },
        {},
    ],
    ids=["no-tests", "no-data"],
)
def test_an_empty_run_draws_and_says_so(tmp_path: Path, browser: str, data: dict[str, Any]) -> None:
    path = tmp_path / "empty.html"
    write_page(path, data)
    dom = drawn(path)
    assert dom.text("empty-note") == "No test ran in this run."
    assert not dom.with_class("bar")
    assert len(dom.with_class("lane")) == len(data.get("lanes", []))
    if data:
        assert "threads share one interpreter" in dom.text("summary-speedup")
        assert dom.with_class("event")[0].attributes["data-name"] == "collection"


@pytest.mark.slow
def test_screenshot_of_the_page(tmp_path: Path, browser: str) -> None:
    path = tmp_path / "run.html"
    write_page(path, small_run())
    image = tmp_path / "run.png"
    screenshot(path, image, 1400, 900)
    assert image.read_bytes().startswith(b"\x89PNG")
