"""A pytest plugin for acceptance runs (loaded with ``-p outcomes_recorder``): in the main
process, write every test's phases and outcomes, and the exit status, to ``PARPROC_OUTCOMES``."""

from __future__ import annotations

import json
import os

import pytest

from pytest_parproc import is_worker

_tests: dict[str, list[str]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if is_worker():
        return
    outcome = report.outcome
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
    _tests.setdefault(report.nodeid, []).append(f"{report.when}:{outcome}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("PARPROC_OUTCOMES")
    if path and not is_worker():
        with open(path, "w") as file:
            json.dump({"exitstatus": int(exitstatus), "tests": _tests}, file)
