"""pytest-timeout beside the plugin: its limits fail the same tests as serially on every
backend, and on threads they never end the whole run (its timers cannot work on a test thread:
the limit becomes the test's own, as ``--par-timeout`` sets it)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

pytest.importorskip("pytest_timeout", reason="the [plugins] extra: tox -e plugins installs it")

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # tests wait for their limits on purpose

TESTS = """
import time
import pytest

def sleep_long():
    for _ in range(600):
        time.sleep(0.1)

@pytest.mark.timeout(1)
def test_marked_too_slow():
    sleep_long()

@pytest.mark.timeout(1, func_only=True)
def test_call_too_slow():
    sleep_long()

@pytest.mark.timeout(60)
def test_marked_in_time():
    pass

@pytest.mark.parametrize("n", range(4))
def test_plain(n):
    pass
"""

MODES = {
    "loky-fork": ("--n-jobs=2",),
    "multiprocessing": ("--n-jobs=2", "--par-backend=multiprocessing"),
    "threading": ("--n-jobs=2", "--par-backend=threading"),
}


def outcomes(pytester: pytest.Pytester, *args: str) -> tuple[int, dict[str, str], str]:
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--junitxml={junit}", *args, timeout=180
    )
    found = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        found[case.get("name", "")] = "failed" if failed else "passed"
    return result.ret, found, result.stdout.str()


@pytest.mark.parametrize("mode", list(MODES))
def test_the_same_tests_run_out_of_time_as_serially(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_suite=TESTS)
    serial = outcomes(pytester)
    assert serial[1]["test_marked_too_slow"] == serial[1]["test_call_too_slow"] == "failed"
    assert serial[0] == 1 and len(serial[1]) == 7
    ret, found, output = outcomes(pytester, *MODES[mode])
    assert (ret, found) == serial[:2]
    if mode == "threading":
        # the run ended as runs do (the junitxml above), the plugin's limit named ...
        assert "pytest-timeout's 1 s, from its timeout marker" in output
        # ... and a limit on the call alone is kept by the plugin's own timer, in the main thread
        assert "pytest-timeout times its call alone (func_only)" in output


def test_on_threads_the_option_sets_each_test_s_limit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_suite="""
        import time

        def test_slow():
            for _ in range(600):
                time.sleep(0.1)

        def test_fast():
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--timeout=1",
        "--n-jobs=2",
        "--par-backend=threading",
        timeout=180,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_slow ran past the time limit (pytest-timeout's 1 s, from --timeout)*"]
    )
