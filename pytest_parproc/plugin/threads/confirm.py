"""The confirmation pass: a test that failed on a thread, beside other tests, runs again alone in
the main thread once the threads of its segment have finished and its serial lane has run (an
earlier test of the lane may mend process-wide state that it met broken, as serially), and only
that run is reported.

A test that passes alone failed because of what ran beside it (process-wide state that no
isolation of ours covers: ``sys.argv``, ``gc.get_referrers``, a module-level switch). The run
reports it passed and lists it in one summary section, with advice to mark it
``parproc_serial``; junitxml records the failure on the thread as a property of its test case.
A test that fails alone too is a failure, reported once, from the run alone, as serially.

Not confirmed: failures under ``-x`` / ``--maxfail`` (the threads stop at the first failure they
see, before any confirmation could run), tests left running past their time limit, and tests
that asked the whole run to stop (``pytest.exit``, Ctrl-C).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ..names import SERIAL_MARK

#: The junitxml property (``report.user_properties``) of a confirmed test: where and how it
#: failed on a thread.
PROPERTY = "parproc_failed_beside_other_tests"
_MESSAGE_CHARS = 300


def call_failed(report: pytest.TestReport) -> bool:
    """Whether a report is of a failed call, the failure confirmed: a failed set-up or teardown
    is a fixture's (running it again would set fixtures up twice), and an xfail or strict xpass
    is no failure to confirm."""
    return report.when == "call" and report.failed and not hasattr(report, "wasxfail")


def failure_text(reports: list[pytest.TestReport]) -> str | None:
    """``"call: <message>"`` when a thread's reports hold a failed call; None otherwise."""
    for report in reports:
        if call_failed(report):
            crash = getattr(report.longrepr, "reprcrash", None)
            message = getattr(crash, "message", None)
            if not message:
                lines = [line for line in report.longreprtext.splitlines() if line.strip()]
                message = lines[-1] if lines else "failed"
            message = " ".join(str(message).split())
            if len(message) > _MESSAGE_CHARS:
                message = message[: _MESSAGE_CHARS - 3] + "..."
            return f"{report.when}: {message}"
    return None


@dataclass
class Confirmations:
    """Tests to run again alone, and what their runs alone showed."""

    #: whether failures on threads are confirmed in this run (not under -x / --maxfail)
    enabled: bool
    #: index of the test -> how it failed on its thread and that run, waiting for its run alone
    pending: dict[int, tuple[str, Any]] = field(default_factory=dict)
    #: node id -> how it failed on its thread: passed alone
    passed_alone: dict[str, str] = field(default_factory=dict)
    #: node id -> how it failed on its thread: failed alone too
    failed_alone: dict[str, str] = field(default_factory=dict)
    #: the failure on a thread of the test running alone now
    _current: str | None = None
    _outcome_failed: bool = False

    def hold(self, result: Any) -> bool:
        """Keep a test's run on a thread (a ``ThreadResult``) back when its call failed there
        beside other tests; whether it was."""
        if not self.enabled or result.on_main_thread:
            return False
        text = failure_text(result.reports)
        if text is None:
            return False
        self.pending[result.index] = (text, result)
        return True

    def take(self) -> list[tuple[int, str, Any]]:
        """The tests to run alone now, in collection order, with their runs on threads."""
        taken = [(index, text, result) for index, (text, result) in sorted(self.pending.items())]
        self.pending.clear()
        return taken

    def started(self, text: str) -> None:
        self._current, self._outcome_failed = text, False

    def annotate(self, report: pytest.TestReport) -> None:
        """A report of the test running alone: when it passed alone, the teardown's carries the
        thread's failure (one that fails alone too is reported exactly as serially)."""
        if self._current is None:
            return
        if report.failed and not hasattr(report, "wasxfail"):
            self._outcome_failed = True
        if report.when == "teardown" and not self._outcome_failed:
            report.user_properties.append((PROPERTY, self._current))

    def ended(self, nodeid: str, completed: bool) -> None:
        """The run alone ended; ``completed``: not cut short by a stop (then it is neither)."""
        if self._current is None:
            return
        if completed:
            target = self.failed_alone if self._outcome_failed else self.passed_alone
            target[nodeid] = self._current
        self._current = None

    def summary(self, verbose: bool) -> list[str]:
        """The summary's section on confirmed tests; nothing when none failed on a thread."""
        lines: list[str] = []
        if self.passed_alone:
            lines.append(
                f"parproc: {len(self.passed_alone)} failed beside other tests, passed alone: "
                f"likely not thread-safe; mark them {SERIAL_MARK} (reported passed):"
            )
            for nodeid, text in self.passed_alone.items():
                lines.append(f"  {nodeid}")
                if verbose:
                    lines.append(f"    on a thread, {text}")
        if self.failed_alone:
            lines.append(
                f"parproc: {len(self.failed_alone)} failed on a thread and again alone (reported "
                "once, from the run alone)" + (":" if verbose else "")
            )
            lines.extend(f"  {nodeid}" for nodeid in (self.failed_alone if verbose else ()))
        return lines
