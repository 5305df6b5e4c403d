"""pytest-json-report beside the plugin: the report the main process writes has what a serial
run's has for each test: outcome, ``json_metadata``, and each phase's stdout and log records,
on every backend and start mode."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("pytest_jsonreport")

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

TESTS = """
import logging
import pytest

@pytest.mark.parametrize("n", range(4))
def test_reported(n, json_metadata):
    json_metadata["n"] = n
    print(f"out {n}")
    logging.getLogger("suite").warning("record %d", n)
    assert n != 3
"""

MODES = {
    "loky-fork": ("--n-jobs=2", "--par-dist=load"),
    "loky-collect": ("--n-jobs=2", "--par-dist=load", "--par-start=collect"),
    "multiprocessing": ("--n-jobs=2", "--par-dist=load", "--par-backend=multiprocessing"),
    "threading": ("--n-jobs=2", "--par-backend=threading"),
}


def details(pytester: pytest.Pytester, *args: str) -> dict[str, Any]:
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--json-report",
        f"--json-report-file={report}",
        *args,
        timeout=120,
    )
    assert result.ret == 1, result.stdout.str()  # test_reported[3] fails on purpose
    found = {}
    for test in json.loads(report.read_text())["tests"]:
        call = test.get("call", {})
        found[test["nodeid"]] = {
            "outcome": test["outcome"],
            "metadata": test.get("metadata"),
            "stdout": call.get("stdout"),
            "log": [record["msg"] for record in call.get("log", [])],
        }
    return found


@pytest.mark.parametrize("mode", list(MODES))
def test_the_report_has_what_a_serial_run_has(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_suite=TESTS)
    serial = details(pytester)
    # (on threads, every test then runs in the serial lane: see the test below)
    assert serial["test_suite.py::test_reported[2]"] == {
        "outcome": "passed",
        "metadata": {"n": 2},
        "stdout": "out 2\n",
        "log": ["record 2"],
    }
    assert details(pytester, *MODES[mode]) == serial


def test_on_threads_without_log_records_tests_run_concurrently(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=TESTS)
    omit = ("--json-report-omit", "log")
    serial = details(pytester, *omit)
    assert serial["test_suite.py::test_reported[1]"]["metadata"] == {"n": 1}
    threaded = details(pytester, *omit, "--n-jobs=2", "--par-backend=threading", "-v")
    assert threaded == serial
    log_kept = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--json-report", "--n-jobs=2", "--par-backend=threading", "-v"
    )
    log_kept.stdout.fnmatch_lines(["parproc: 4 of 4 tests ran alone*", "*pytest-json-report*"])
