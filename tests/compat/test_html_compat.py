"""pytest-html beside the plugin: the self-contained report the main process writes has a serial
run's rows for each test (id, outcome, links, extras from the ``extras`` fixture and from
``report.extras``, and the log: captured output, tracebacks) and its summary counts, on every
backend and start mode. Durations and dates differ from run to run and are left out."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

pytest.importorskip("pytest_html", reason="the [plugins] extra: tox -e plugins installs it")

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

MODES = {
    "loky-fork": ("--n-jobs=2", "--par-dist=load"),
    "loky-collect": ("--n-jobs=2", "--par-dist=load", "--par-start=collect"),
    "multiprocessing": ("--n-jobs=2", "--par-dist=load", "--par-backend=multiprocessing"),
    "threading": ("--n-jobs=2", "--par-backend=threading"),
}

CONFTEST = """
import pytest
import pytest_html


@pytest.fixture
def noisy_teardown():
    yield
    print("teardown says bye")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        extras = getattr(report, "extras", [])
        extras.append(pytest_html.extras.html(f"<p>added for {item.name}</p>"))
        report.extras = extras
"""

TESTS = """
import logging
import sys

import pytest
import pytest_html


def test_prints(noisy_teardown):
    print("hello from test_prints")
    sys.stderr.write("to stderr\\n")
    logging.getLogger("suite").warning("a record")


def test_fails():
    value = 41
    assert value == 42, "value was wrong"


@pytest.mark.parametrize("n", [1, 2])
def test_fixture_extras(extras, n):
    extras.append(pytest_html.extras.text(f"note {n}", name="note"))
    extras.append(pytest_html.extras.url("https://example.com/", name="link"))
    extras.append(pytest_html.extras.json({"n": n}, name="data"))


@pytest.mark.skip(reason="skipped on purpose")
def test_skipped():
    pass


@pytest.mark.xfail(reason="expected")
def test_xfail():
    assert False
"""

# A fixture of a conftest file that fails: pytest-html shows the error on a row of its own
# (``::setup``). (pytest cuts the traceback at the first frame of the test's file: with the
# fixture in the test's file, frames before it would not show.)
SETUP_ERROR_CONFTEST = """
import pytest


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")
"""

SETUP_ERROR = """
def test_error(broken):
    pass
"""

# Two tests that add extras with the ``extras`` fixture. On threads they wait for each other
# (with a bound) so that they surely run at the same time; elsewhere they run as written.
CONCURRENT_EXTRAS = """
import threading

import pytest
import pytest_html

together = threading.Barrier(2)


@pytest.mark.parametrize("n", [1, 2])
def test_own_extras(extras, n):
    extras.append(pytest_html.extras.text(f"note {n}", name=f"note {n}"))
    if threading.current_thread() is not threading.main_thread():
        try:
            together.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
"""


def report(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, Any], pytest.RunResult]:
    """The report's rows by test id (less their durations), summary counts and run count."""
    path = pytester.path / "report.html"
    if path.exists():
        path.unlink()
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--html=report.html", "--self-contained-html", *args, timeout=120
    )
    assert path.exists(), result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*Generated html report: file://*report.html*"])
    text = path.read_text(encoding="utf-8")
    blob = re.search(r'data-jsonblob="([^"]*)"', text)
    assert blob is not None, text[:2000]
    data = json.loads(html.unescape(blob.group(1)))
    rows = {
        nodeid: [
            {
                **{key: value for key, value in row.items() if key != "duration"},
                "resultsTableRow": [
                    cell for cell in row["resultsTableRow"] if 'class="col-duration"' not in cell
                ],
            }
            for row in entries
        ]
        for nodeid, entries in data["tests"].items()
    }
    counts = dict(re.findall(r'<span class="(\w+)">(\d+) ', text))
    run_count = re.search(r'<p class="run-count">(\d+ tests?) ', text)
    assert run_count is not None
    return {"rows": rows, "counts": counts, "run count": run_count.group(1)}, result


def extra_names(found: dict[str, Any]) -> dict[str, list[str | None]]:
    return {
        nodeid: [extra["name"] for row in entries for extra in row["extras"]]
        for nodeid, entries in found["rows"].items()
    }


@pytest.mark.parametrize("mode", list(MODES))
def test_the_rows_and_counts_are_those_of_a_serial_run(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=TESTS)
    serial, result = report(pytester)
    assert result.ret == 1, result.stdout.str()
    rows = serial["rows"]
    assert set(rows) == {
        "test_suite.py::test_prints",
        "test_suite.py::test_fails",
        "test_suite.py::test_fixture_extras[1]",
        "test_suite.py::test_fixture_extras[2]",
        "test_suite.py::test_skipped",
        "test_suite.py::test_xfail",
    }
    printed = rows["test_suite.py::test_prints"][0]["log"]
    for text in ("hello from test_prints", "to stderr", "a record", "teardown says bye"):
        assert text in printed
    assert "value was wrong" in rows["test_suite.py::test_fails"][0]["log"]
    assert extra_names(serial)["test_suite.py::test_fixture_extras[2]"] == [
        "note",
        "link",
        "data",
        None,  # the conftest's report.extras
    ]
    assert "added for test_fails" in rows["test_suite.py::test_fails"][0]["extras"][0]["content"]
    assert serial["counts"] == {
        "failed": "1",
        "passed": "3",
        "skipped": "1",
        "xfailed": "1",
        "xpassed": "0",
        "error": "0",
        "rerun": "0",
        "retried": "0",
    }
    assert serial["run count"] == "5 tests"

    parallel, result = report(pytester, *MODES[mode])
    assert result.ret == 1, result.stdout.str()
    assert parallel == serial


@pytest.mark.parametrize("mode", list(MODES))
def test_a_setup_error_row_is_that_of_a_serial_run(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeconftest(SETUP_ERROR_CONFTEST)
    pytester.makepyfile(test_setup=SETUP_ERROR)
    serial, result = report(pytester)
    assert result.ret == 1, result.stdout.str()
    (row,) = serial["rows"]["test_setup.py::test_error"]
    assert row["result"] == "Error"
    assert row["testId"] == "test_setup.py::test_error::setup"
    assert "RuntimeError: fixture broke" in row["log"]
    assert serial["counts"]["error"] == "1"

    parallel, result = report(pytester, *MODES[mode])
    assert result.ret == 1, result.stdout.str()
    assert parallel == serial


@pytest.mark.parametrize("mode", list(MODES))
def test_tests_running_together_keep_their_own_extras(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_extras=CONCURRENT_EXTRAS)
    serial, result = report(pytester)
    assert result.ret == 0, result.stdout.str()
    assert extra_names(serial) == {
        "test_extras.py::test_own_extras[1]": ["note 1"],
        "test_extras.py::test_own_extras[2]": ["note 2"],
    }
    parallel, result = report(pytester, *MODES[mode])
    assert result.ret == 0, result.stdout.str()
    assert parallel == serial
