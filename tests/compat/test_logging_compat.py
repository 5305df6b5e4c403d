"""pytest's logging plugin beside the plugin: ``--log-file`` and live logging get every
worker's records, in order within each test, as serially, on every backend and start mode."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

TESTS = """
import logging
import pytest

log = logging.getLogger("suite")

@pytest.fixture
def resource(request):
    log.info("setup %s", request.node.name)
    yield
    log.info("teardown %s", request.node.name)

@pytest.mark.parametrize("n", range(4))
def test_log(n, resource):
    log.warning("warn test_log[%d]", n)
    log.info("info test_log[%d]", n)
    log.debug("debug test_log[%d]", n)
    if n == 3:
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("boom test_log[3]")
"""

MODES = {
    "loky-fork": ("--n-jobs=2", "--par-dist=load"),
    "loky-collect": ("--n-jobs=2", "--par-dist=load", "--par-start=collect"),
    "multiprocessing": ("--n-jobs=2", "--par-dist=load", "--par-backend=multiprocessing"),
    "threading": ("--n-jobs=2", "--par-backend=threading"),
}

TEST = re.compile(r"test_log\[\d\]")


def per_test(lines: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in lines:
        match = TEST.search(line)
        if match and "::" not in line:  # records, not the test's own "-v" line
            found.setdefault(match.group(), []).append(line)
    return found


def logged(pytester: pytest.Pytester, *args: str) -> tuple[list[str], list[str]]:
    path = pytester.path / "run.log"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-v",
        f"--log-file={path}",
        "--log-file-level=DEBUG",
        "--log-file-format=%(levelname)s %(name)s %(message)s",
        "--log-cli-level=INFO",
        "--log-cli-format=LIVE %(levelname)s %(message)s",
        *args,
        timeout=120,
    )
    result.assert_outcomes(passed=4)
    live = [line for line in result.outlines if line.startswith("LIVE ") or "live log" in line]
    return path.read_text().splitlines(), live


@pytest.mark.parametrize("mode", list(MODES))
def test_the_log_file_and_live_logging_get_what_a_serial_run_writes(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(test_suite=TESTS)
    serial_file, serial_live = logged(pytester)
    assert per_test(serial_file)["test_log[1]"] == [
        "INFO suite setup test_log[1]",
        "WARNING suite warn test_log[1]",
        "INFO suite info test_log[1]",
        "DEBUG suite debug test_log[1]",
        "INFO suite teardown test_log[1]",
    ]
    assert "ZeroDivisionError: division by zero" in serial_file
    assert per_test(serial_live)["test_log[1]"] == [
        "LIVE INFO setup test_log[1]",
        "LIVE WARNING warn test_log[1]",
        "LIVE INFO info test_log[1]",
        "LIVE INFO teardown test_log[1]",
    ]
    file, live = logged(pytester, *MODES[mode])
    # every record, its traceback included; each test's in its order; the tests in any order
    assert sorted(file) == sorted(serial_file)
    assert per_test(file) == per_test(serial_file)
    assert per_test(live) == per_test(serial_live)
    assert sorted(live) == sorted(serial_live)  # the "live log <phase>" headings too
