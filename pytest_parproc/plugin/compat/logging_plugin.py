"""pytest's logging plugin: ``--log-file`` and live logging (``--log-cli-level``, ``log_cli``)
get the records of tests that run in worker processes, from the main process, test by test.

A worker writes neither (its terminal is the main process's; a worker that collects has no log
file; a forked one would write into the main process's file at its own pace). In every worker
a handler on the root logger keeps the records of each test phase, down to the lowest level
the main process writes (``start_in_worker``); they travel on that phase's report
(``ATTRIBUTE``, as plain values), and the main process hands them to its log file's and live
logging's handlers, each at its own level, as it replays the report (``before_replay``). The
records keep their times, loggers and places; an exception's traceback travels as text.

On threads the tests log in the main process, where live logging would mix concurrent tests'
records: the threading runner's log router keeps each phase's records on its report too
(``threads.capture``), and the same replay writes them, test by test.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from .. import pytest_internals

#: the report attribute that carries its phase's log records
ATTRIBUTE = "parproc_log_records"
PLUGIN_NAME = "parproc-log-records"
#: the ``workerinput`` key of the levels the main process writes records at
LEVELS = "parproc_log_levels"
_PLAIN = (str, int, float, bool, type(None))


def record_values(record: logging.LogRecord) -> dict[str, Any]:
    """A record as plain values (its message formatted, its traceback as text)."""
    values = {key: value for key, value in record.__dict__.items() if isinstance(value, _PLAIN)}
    exc_text = record.exc_text
    if record.exc_info and not exc_text:
        exc_text = logging.Formatter().formatException(record.exc_info)
    values.update(msg=record.getMessage(), args=None, exc_info=None, exc_text=exc_text)
    return values


class _Keeper(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record_values(record))


class _WorkerRecords:
    def __init__(self, keeper: _Keeper) -> None:
        self.keeper = keeper

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self) -> Any:
        report = yield
        if self.keeper.records:
            setattr(report, ATTRIBUTE, self.keeper.records)
            self.keeper.records = []
        return report


def worker_input(config: pytest.Config) -> dict[str, Any]:
    """In the main process: the levels of its log file and live logging, for the workers."""
    levels = [level for _, level, _ in pytest_internals.log_handlers(config)]
    return {LEVELS: levels} if levels else {}


def start_in_worker(config: pytest.Config) -> None:
    """In a worker: keep the records the main process's log file or live logging would get."""
    levels = getattr(config, "workerinput", {}).get(LEVELS)
    if not levels or config.pluginmanager.has_plugin(PLUGIN_NAME):
        return
    root = logging.getLogger()
    # A forked worker's root logger still has the main process's handlers of both.
    for handler, _, _ in pytest_internals.log_handlers(config):
        root.removeHandler(handler)
    keeper = _Keeper()
    root.addHandler(keeper)
    if min(levels):  # as pytest's logging plugin lowers it around the run
        root.setLevel(min(root.level or logging.WARNING, min(levels)))
    config.pluginmanager.register(_WorkerRecords(keeper), PLUGIN_NAME)


def before_replay(config: pytest.Config, report: pytest.TestReport) -> None:
    """In the main process, before a worker's report is logged: its phase's records to the log
    file and to live logging."""
    records = getattr(report, ATTRIBUTE, None)
    if not records:
        return
    handlers = pytest_internals.log_handlers(config)
    for handler, _, live in handlers:
        if live:  # its "live log <phase>" heading, once per phase
            pytest_internals.set_live_log_phase(handler, report.when or "call")
    for values in records:
        record = logging.makeLogRecord(values)
        for handler, level, _ in handlers:
            if record.levelno >= level:
                handler.handle(record)
