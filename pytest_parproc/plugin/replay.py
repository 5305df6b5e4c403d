"""Replaying workers' reports in the main process, through the hooks pytest itself calls, so
the terminal, junitxml, ``--lf``, ``--durations`` and every other plugin see a normal run."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from . import compat, pytest_internals
from .messages import ItemRecord, SerializedReport, WarningRecord

#: the run's replayer, for what is reported after the tests (shared fixtures' teardown)
REPLAYER_KEY = pytest.StashKey["Replayer"]()
#: set when something may have to join the last test's teardown report (``Replayer.held``)
HOLD_LAST_TEARDOWN_KEY = pytest.StashKey[bool]()


def release_held(config: pytest.Config) -> None:
    """Before tests that pytest's own protocol reports in this process (after, or between, the
    replayed ones): the report kept back goes first."""
    replayer = config.stash.get(REPLAYER_KEY, None)
    if replayer is not None:
        replayer.release()


@dataclass
class Held:
    """The passed teardown report of the test replayed last, and its ``logfinish``, kept back
    (``HOLD_LAST_TEARDOWN_KEY``): a serial run reports a session fixture's teardown error in the
    last test's teardown report, and the shared fixtures are torn down after every test."""

    index: int
    ihook: Any
    report: pytest.TestReport
    finished: bool = False
    warnings: list[WarningRecord] = field(default_factory=list)


class Replayer:
    """Turns item records (possibly arriving in pieces) into hook calls, each exactly once."""

    def __init__(self, config: pytest.Config, items: Sequence[pytest.Item]) -> None:
        self.config = config
        self.items = items
        config.stash[REPLAYER_KEY] = self
        self._hold = config.stash.get(HOLD_LAST_TEARDOWN_KEY, False)
        self.held: Held | None = None
        self._started: set[int] = set()
        self._reports_done: dict[int, int] = {}
        self._warnings_done: dict[int, int] = {}
        self.finished: set[int] = set()
        #: each started test's location, from its first report (what the worker computed)
        self._locations: dict[int, tuple[str, int | None, str]] = {}
        self._hooks: dict[object, Any] = {}  # the hook proxy of each test file
        #: the summed duration of every replayed report (setup, call and teardown)
        self.test_time_s = 0.0
        #: the same, per test (by index)
        self.durations: dict[int, float] = {}
        self._load = pytest_internals.report_codec(config)[1]

    def replay(self, record: ItemRecord) -> None:
        index = record.index
        if index in self.finished:
            return
        item = self.items[index]
        nodeid = item.nodeid  # a property that builds the string (pytest 9.2)
        if record.reports and index not in self._started:
            first = record.reports[0]
            same = report_field(first, "nodeid") == nodeid
            location = report_field(first, "location") if same else None
            if isinstance(location, (list, tuple)) and len(location) == 3:
                self._locations[index] = (str(location[0]), location[1], str(location[2]))
        self._start(index, nodeid)
        done = self._reports_done.get(index, 0)
        load = self._load
        ihook = self._ihook(item)
        for data in record.reports[done:]:
            if report_field(data, "nodeid") != nodeid:
                # Found by parametrization key: the worker's id differs; the main process's
                # is the one every plugin here knows.
                if isinstance(data, pytest.TestReport):
                    data.nodeid, data.location = nodeid, item.location
                else:
                    data = {**data, "nodeid": nodeid, "location": item.location}
            self._log(index, ihook, load(data, item))
        self._reports_done[index] = max(done, len(record.reports))
        if record.complete:
            self._finish(index, nodeid)
        # pytest records a test's warnings after its protocol ended (catch_warnings_for_item
        # wraps pytest_runtest_protocol), so they come after logfinish here too.
        done = self._warnings_done.get(index, 0)
        for warning in record.warnings[done:]:
            if self.held is not None and self.held.index == index:
                self.held.warnings.append(warning)  # (after its logfinish, as serially)
            else:
                self._warn(warning)
        self._warnings_done[index] = max(done, len(record.warnings))

    def replay_reports(self, index: int, reports: Sequence[pytest.TestReport]) -> None:
        """A test that ran in a thread of this process: its reports as they are."""
        if index in self.finished:
            return
        item = self.items[index]
        self._start(index)
        ihook = item.ihook
        for report in reports:
            self._log(index, ihook, report)
        self._finish(index)

    def fail(self, index: int, when: str, text: str) -> None:
        """Report a test that produced no result of its own (its worker died while running it,
        or the worker could not find it) as failed in phase ``when``."""
        if index in self.finished:
            return
        item = self.items[index]
        self._start(index)
        for report in failed_phase(item, when, text):
            self._log(index, item.ihook, report)
        self._finish(index)

    def _ihook(self, item: pytest.Item) -> Any:
        """``item.ihook``, looked up once per test file (pytest computes it on each access,
        from the conftest files that apply to the item's path)."""
        path = getattr(item, "path", None)
        hook = self._hooks.get(path)
        if hook is None:
            hook = self._hooks[path] = item.ihook
        return hook

    def _location(self, index: int) -> tuple[str, int | None, str]:
        # A worker's report carries the location it computed, the same as this process's
        # (same rootdir, same code); computing it again costs more than the rest of a replay.
        location = self._locations.get(index)
        return self.items[index].location if location is None else location

    def release(self, report: pytest.TestReport | None = None) -> None:
        """Log the report kept back (or ``report`` in its place), then its ``logfinish``."""
        held, self.held = self.held, None
        if held is None:
            return
        held.ihook.pytest_runtest_logreport(report=report or held.report)
        if held.finished:
            self._logfinish(held.index)
        for warning in held.warnings:
            self._warn(warning)

    def _start(self, index: int, nodeid: str | None = None) -> None:
        if self.held is not None and self.held.index != index:
            self.release()
        if index not in self._started:
            self._started.add(index)
            item = self.items[index]
            location = self._location(index)
            nodeid = item.nodeid if nodeid is None else nodeid
            self._ihook(item).pytest_runtest_logstart(nodeid=nodeid, location=location)

    def _finish(self, index: int, nodeid: str | None = None) -> None:
        self.finished.add(index)
        if self.held is not None and self.held.index == index:
            self.held.finished = True
            return
        self._logfinish(index, nodeid)

    def _logfinish(self, index: int, nodeid: str | None = None) -> None:
        item = self.items[index]
        location = self._location(index)
        nodeid = item.nodeid if nodeid is None else nodeid
        self._ihook(item).pytest_runtest_logfinish(nodeid=nodeid, location=location)
        self._locations.pop(index, None)

    def _log(self, index: int, ihook: Any, report: pytest.TestReport) -> None:
        self.test_time_s += report.duration
        self.durations[index] = self.durations.get(index, 0.0) + report.duration
        compat.before_replay(self.config, report)
        if self.held is not None:
            self.release()
        if self._hold and report.when == "teardown" and report.passed:
            self.held = Held(index, ihook, report)
            return
        ihook.pytest_runtest_logreport(report=report)

    def _warn(self, record: WarningRecord) -> None:
        category = _warning_category(record.category_module, record.category_name)
        try:
            message: Warning = category(record.message)
        except Exception:
            message = UserWarning(record.message)
        warning_message = warnings.WarningMessage(
            message, category, record.filename, record.lineno, None, record.line
        )
        self.warn_message(warning_message, record.nodeid)

    def warn_message(self, warning_message: warnings.WarningMessage, nodeid: str) -> None:
        # pytest_warning_recorded is a historic hook; pytest itself calls it this way.
        self.config.hook.pytest_warning_recorded.call_historic(
            kwargs={
                "warning_message": warning_message,
                "when": "runtest",
                "nodeid": nodeid,
                "location": None,
            }
        )


def report_field(report: SerializedReport | pytest.TestReport, name: str) -> Any:
    """A field of a report from a worker: the report itself, or its serialized form."""
    return report.get(name) if isinstance(report, dict) else getattr(report, name, None)


def make_report(
    item: pytest.Item, when: str, outcome: str, text: str | None, duration: float = 0.0
) -> pytest.TestReport:
    """A report of ``item``'s phase ``when`` that the main process makes itself (its worker
    could not: it died, or was left running past a time limit)."""
    return pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords=dict.fromkeys(item.keywords, 1),
        outcome=outcome,  # type: ignore[arg-type]
        longrepr=text,
        when=when,  # type: ignore[arg-type]
        duration=duration,
    )


def failed_phase(
    item: pytest.Item, when: str, text: str, duration: float = 0.0
) -> list[pytest.TestReport]:
    """Phase ``when`` of ``item`` failed with ``text``, and the teardown that pytest always
    reports after it (passed: nothing of the test's own ran there)."""
    reports = [make_report(item, when, "failed", text, duration)]
    if when != "teardown":
        reports.append(make_report(item, "teardown", "passed", None))
    return reports


def phase_after(last: tuple[str, bool] | None) -> str:
    """The phase a test was in when it stopped (its worker died, or it ran past its limit),
    from the last report it had made, ``(when, passed)``: set-up before any report, the call
    after a passed set-up, teardown after anything else."""
    if last is None:
        return "setup"
    when, passed = last
    return "call" if when == "setup" and passed else "teardown"


def _warning_category(module_name: str, qualified_name: str) -> type[Warning]:
    try:
        found: object = importlib.import_module(module_name)
        for part in qualified_name.split("."):
            found = getattr(found, part)
    except Exception:
        return UserWarning
    if isinstance(found, type) and issubclass(found, Warning):
        return found
    return UserWarning
