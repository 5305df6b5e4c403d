"""The worker-side plugin that keeps each test's serialized reports and warnings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .. import pytest_internals
from ..messages import ItemRecord, WarningRecord
from .rundir import ProgressLog, RunDirectory, RunningSlot


def _picklable(data: dict[str, Any]) -> dict[str, Any]:
    """A serialized report whose values all pickle: record_property takes any object, and
    plugins add attributes to reports; what cannot be pickled travels as its repr."""
    import pickle

    def clean(value: Any) -> Any:
        try:
            pickle.dumps(value)
        except Exception:
            if isinstance(value, list):
                return [clean(member) for member in value]
            if isinstance(value, tuple):
                return tuple(clean(member) for member in value)
            return repr(value)
        return value

    return {key: clean(value) for key, value in data.items()}


class ReportCollector:
    """The worker-side plugin: keeps the serialized reports and warnings of the running test,
    and writes each one to the progress log as it happens."""

    def __init__(
        self, log: ProgressLog, run_dir: RunDirectory, running: RunningSlot | None = None
    ) -> None:
        self.log = log
        self.run_dir = run_dir
        #: what the main process's live progress reads (None: it shows none)
        self.running = running
        self._failed = False  # (the running test has a failed report)
        self.config: pytest.Config | None = None
        self.current: ItemRecord | None = None
        #: puts --par-timeout's timer back (pytest's faulthandler plugin cancels it when a test
        #: fails, in its own pytest_exception_interact)
        self.rearm: Callable[[], None] | None = None
        self._dump: tuple[pytest.Config, Callable[[pytest.TestReport], Any]] | None = None

    def begin(self, index: int) -> ItemRecord:
        self.current = ItemRecord(index)
        self.log.write("start", index)
        if self.running is not None:
            self.running.started(index)
        self._failed = False
        return self.current

    def end(self, complete: bool) -> None:
        record = self.current
        if record is not None:
            record.complete = complete
            self.log.write("end", record.index, complete)
        if self.running is not None:
            self.running.ended(self._failed)
        self.current = None

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.current
        if record is None or self.config is None:
            return
        if self._dump is None or self._dump[0] is not self.config:
            self._dump = (self.config, pytest_internals.report_codec(self.config)[0])
        data = self._dump[1](report)
        try:
            self.log.write("report", record.index, data)
        except Exception:
            if isinstance(data, pytest.TestReport):  # an attribute that cannot be pickled
                hook = self.config.hook
                data = hook.pytest_report_to_serializable(config=self.config, report=report)
            data = _picklable(data)
            self.log.write("report", record.index, data)
        record.reports.append(data)
        if report.failed and not hasattr(report, "wasxfail"):
            self._failed = True
            self.run_dir.count_failure()  # --maxfail counts the failures of every worker

    @pytest.hookimpl(trylast=True)
    def pytest_exception_interact(self) -> None:
        if self.rearm is not None:
            self.rearm()

    @pytest.hookimpl(trylast=True)
    def pytest_warning_recorded(
        self, warning_message: Any, when: str, nodeid: str, location: object
    ) -> None:
        record = self.current
        if record is None or when != "runtest":
            return
        category = warning_message.category
        warning = WarningRecord(
            message=str(warning_message.message),
            category_module=category.__module__,
            category_name=category.__qualname__,
            filename=str(warning_message.filename),
            lineno=int(warning_message.lineno or 0),
            line=warning_message.line,
            nodeid=nodeid,
        )
        record.warnings.append(warning)
        self.log.write("warning", record.index, warning)
