"""Replaying workers' records in the main process: each hook once per test, in pytest's order,
under the main process's node ids, whatever pieces the records arrive in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_parproc.plugin.messages import ItemRecord, WarningRecord
from pytest_parproc.plugin.replay import HOLD_LAST_TEARDOWN_KEY, Replayer, make_report


class Hooks:
    """The hook calls a replay makes, in one list: pytest's runtest log hooks (``ihook``),
    ``pytest_report_from_serializable`` and ``pytest_warning_recorded``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.hook = self  # as config.hook
        self.pytest_warning_recorded = self  # call_historic below
        self.stash = pytest.Stash()  # as config.stash

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int, str]) -> None:
        self.events.append(("start", (nodeid, location)))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.events.append(("report", report))

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int, str]) -> None:
        self.events.append(("finish", (nodeid, location)))

    def pytest_report_from_serializable(self, config: object, data: dict[str, Any]) -> Any:
        assert config is self
        return pytest.TestReport(**data)

    def call_historic(self, kwargs: dict[str, Any]) -> None:
        self.events.append(("warning", kwargs))

    def trace(self) -> list[str]:
        """The events in short: ``start <id>``, ``<when> <outcome> <id>``, ``finish <id>``,
        ``warning <message>``."""
        short = []
        for kind, value in self.events:
            if kind == "report":
                short.append(f"{value.when} {value.outcome} {value.nodeid}")
            elif kind == "warning":
                short.append(f"warning {value['warning_message'].message}")
            else:
                short.append(f"{kind} {value[0]}")
        return short

    def reports(self) -> list[pytest.TestReport]:
        return [value for kind, value in self.events if kind == "report"]


class Item:
    """A stand-in test item: what the replayer reads of one."""

    def __init__(self, name: str, line: int, hooks: Hooks) -> None:
        self.nodeid = f"test_m.py::{name}"
        self.location = ("test_m.py", line, name)
        self.keywords = {name: 1, "test_m.py": 1}
        self.path = Path("test_m.py")
        self.ihook = hooks


#: What the hooks see of test t0 failed in its call: each hook once, in pytest's order.
FAILED_IN_CALL = [
    "start test_m.py::t0",
    "setup passed test_m.py::t0",
    "call failed test_m.py::t0",
    "teardown passed test_m.py::t0",
    "finish test_m.py::t0",
]


def setup_run(count: int = 3, hold: bool = False) -> tuple[Hooks, list[Any], Replayer]:
    hooks = Hooks()
    if hold:
        hooks.stash[HOLD_LAST_TEARDOWN_KEY] = True
    items: list[Any] = [Item(f"t{n}", 10 * n, hooks) for n in range(count)]
    return hooks, items, Replayer(hooks, items)  # type: ignore[arg-type]


def serialized(
    item: Any, when: str, outcome: str = "passed", duration: float = 0.0, nodeid: str = ""
) -> dict[str, Any]:
    """A report as a worker sends it (``nodeid``: the worker's own, if it differs)."""
    return {
        "nodeid": nodeid or item.nodeid,
        "location": item.location if not nodeid else ("elsewhere.py", 99, nodeid),
        "keywords": dict(item.keywords),
        "outcome": outcome,
        "longrepr": None,
        "when": when,
        "duration": duration,
    }


def warning(text: str, module: str = "builtins", name: str = "UserWarning") -> WarningRecord:
    return WarningRecord(text, module, name, "test_m.py", 7, "warn()", "test_m.py::t0")


def test_each_hook_runs_once_per_test_when_its_record_arrives_in_pieces() -> None:
    hooks, (item, *_), replayer = setup_run()
    record = ItemRecord(0, [serialized(item, "setup")])
    replayer.replay(record)
    replayer.replay(record)
    assert hooks.trace() == ["start test_m.py::t0", "setup passed test_m.py::t0"]
    record.reports += [serialized(item, "call", "failed"), serialized(item, "teardown")]
    record.complete = True
    replayer.replay(record)
    replayer.replay(record)
    assert hooks.trace() == FAILED_IN_CALL
    assert replayer.finished == {0}
    assert hooks.events[0] == ("start", (item.nodeid, item.location))


def test_warnings_are_recorded_once_each_and_after_the_test_finished() -> None:
    hooks, (item, *_), replayer = setup_run()
    record = ItemRecord(0, [serialized(item, "setup")], [warning("early")])
    replayer.replay(record)
    replayer.replay(record)
    record.reports += [serialized(item, "call"), serialized(item, "teardown")]
    record.warnings.append(warning("late", "builtins", "DeprecationWarning"))
    record.complete = True
    replayer.replay(record)
    assert hooks.trace()[-3:] == [
        "teardown passed test_m.py::t0",
        "finish test_m.py::t0",
        "warning late",
    ]
    assert hooks.trace().count("warning early") == 1
    kwargs = hooks.events[-1][1]
    message = kwargs["warning_message"]
    assert (kwargs["when"], kwargs["nodeid"], kwargs["location"]) == (
        "runtest",
        "test_m.py::t0",
        None,
    )
    assert message.category is DeprecationWarning and isinstance(
        message.message, DeprecationWarning
    )
    assert (message.filename, message.lineno, message.line) == ("test_m.py", 7, "warn()")


def test_records_of_a_finished_test_are_ignored() -> None:
    hooks, (item, *_), replayer = setup_run()
    phases = [serialized(item, when) for when in ("setup", "call", "teardown")]
    replayer.replay(ItemRecord(0, phases, [], True))
    before = hooks.trace()
    replayer.replay(
        ItemRecord(0, [*phases, serialized(item, "call", "failed")], [warning("x")], True)
    )
    replayer.fail(0, "call", "too late")
    replayer.replay_reports(0, [make_report(item, "call", "failed", "again")])
    assert hooks.trace() == before


def test_a_report_under_the_workers_own_node_id_is_logged_under_the_main_processs() -> None:
    hooks, (_, item, _), replayer = setup_run()
    worker_id = "test_m.py::t1[worker-made-id]"
    phases = [serialized(item, when, nodeid=worker_id) for when in ("setup", "call", "teardown")]
    replayer.replay(ItemRecord(1, phases, [], True))
    assert all((r.nodeid, r.location) == (item.nodeid, item.location) for r in hooks.reports())
    assert hooks.events[0] == ("start", (item.nodeid, item.location))
    assert hooks.events[-1] == ("finish", (item.nodeid, item.location))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("setup", ["setup failed", "teardown passed"]),
        ("call", ["call failed", "teardown passed"]),
        ("teardown", ["teardown failed"]),
    ],
)
def test_a_test_without_a_result_of_its_own_is_failed_in_its_phase(
    when: str, expected: list[str]
) -> None:
    hooks, (_, item, _), replayer = setup_run()
    replayer.fail(1, when, "the worker died")
    trace = [f"{entry} {item.nodeid}" for entry in expected]
    assert hooks.trace() == [f"start {item.nodeid}", *trace, f"finish {item.nodeid}"]
    failed = hooks.reports()[0]
    assert failed.longrepr == "the worker died" and failed.location == item.location
    assert failed.keywords == dict.fromkeys(item.keywords, 1)
    assert replayer.finished == {1}


def test_a_test_that_died_after_its_set_up_is_failed_in_its_call_and_started_once() -> None:
    hooks, (item, *_), replayer = setup_run()
    replayer.replay(ItemRecord(0, [serialized(item, "setup")]))
    replayer.fail(0, "call", "killed by signal 9")
    assert hooks.trace() == FAILED_IN_CALL


def test_a_test_run_in_this_process_is_logged_with_its_own_reports() -> None:
    hooks, (_, _, item), replayer = setup_run()
    reports = [make_report(item, when, "passed", None) for when in ("setup", "call", "teardown")]
    replayer.replay_reports(2, reports)
    assert [id(report) for report in hooks.reports()] == [id(report) for report in reports]
    assert hooks.trace()[0] == "start test_m.py::t2" and hooks.trace()[-1] == "finish test_m.py::t2"
    assert replayer.finished == {2}


def test_durations_add_up_per_test_and_over_the_run() -> None:
    _, (first, second, _), replayer = setup_run()
    durations = {"setup": 0.25, "call": 0.5, "teardown": 0.125}
    phases = [serialized(first, when, duration=seconds) for when, seconds in durations.items()]
    replayer.replay(ItemRecord(0, phases[:1]))
    replayer.replay(ItemRecord(0, phases, [], True))
    replayer.replay_reports(1, [make_report(second, "call", "passed", None, duration=2.0)])
    replayer.fail(2, "call", "died")
    assert replayer.durations == {0: 0.875, 1: 2.0, 2: 0.0}
    assert replayer.test_time_s == 2.875


@pytest.mark.parametrize(
    ("module", "name", "category"),
    [
        ("no_such_module_for_parproc", "GoneWarning", UserWarning),
        ("builtins", "NoSuchWarning", UserWarning),
        ("builtins", "int", UserWarning),  # not a warning category
        ("pytest", "PytestUnknownMarkWarning", pytest.PytestUnknownMarkWarning),
    ],
)
def test_a_warning_category_this_process_cannot_find_falls_back_to_user_warning(
    module: str, name: str, category: type[Warning]
) -> None:
    hooks, (item, *_), replayer = setup_run()
    replayer.replay(ItemRecord(0, [serialized(item, "setup")], [warning("w", module, name)], True))
    message = hooks.events[-1][1]["warning_message"]
    assert message.category is category
    assert type(message.message) is category and str(message.message) == "w"


def complete(item: Any, index: int, teardown: str = "passed") -> ItemRecord:
    reports = [serialized(item, "setup"), serialized(item, "call"), serialized(item, "teardown")]
    reports[-1]["outcome"] = teardown
    return ItemRecord(index, reports, complete=True)


def test_the_last_passed_teardown_is_held_until_the_next_test_or_the_release() -> None:
    """With shared fixtures, whose teardown error a serial run reports on the last test's
    teardown, the last passed teardown report (and its finish) waits: the next test's start
    releases it, or the end of the run, where it may be replaced."""
    hooks, (first, second, third), replayer = setup_run(hold=True)
    replayer.replay(complete(first, 0))
    assert hooks.trace()[-1] == "call passed test_m.py::t0"
    replayer.replay(complete(second, 1))
    assert hooks.trace()[3:6] == [
        "teardown passed test_m.py::t0",
        "finish test_m.py::t0",
        "start test_m.py::t1",
    ]
    assert hooks.trace()[-1] == "call passed test_m.py::t1"
    assert replayer.finished == {0, 1}
    replayer.replay(complete(third, 2, teardown="failed"))  # (a failed one is not held)
    assert hooks.trace()[-2:] == ["teardown failed test_m.py::t2", "finish test_m.py::t2"]
    assert replayer.held is None
    hooks2, (item, *_), replayer2 = setup_run(hold=True)
    replayer2.replay(complete(item, 0))
    assert replayer2.held is not None
    replacement = pytest.TestReport(**serialized(item, "teardown", "failed"))
    replayer2.release(replacement)
    replayer2.release()  # (nothing left)
    assert hooks2.trace()[-2:] == ["teardown failed test_m.py::t0", "finish test_m.py::t0"]
    assert setup_run()[2].held is None  # (not held without shared fixtures)
