"""pytest's junitxml beside the plugin: ``record_testsuite_property``, ``record_xml_attribute``
and ``record_property`` land in the ``--junitxml`` file as serially, on every backend and start
mode (workers write no file: what they record travels to the main process's)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any

import pytest

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

TESTS = """
import pytest

@pytest.mark.parametrize("n", range(4))
def test_records(n, record_testsuite_property, record_xml_attribute, record_property):
    record_testsuite_property(f"suite{n}", n)
    record_xml_attribute("number", n)
    record_property("square", n * n)
    assert n != 3

def test_plain():
    pass
"""

MODES = {
    "loky-fork": ("--n-jobs=2", "--par-dist=load"),
    "loky-collect": ("--n-jobs=2", "--par-dist=load", "--par-start=collect"),
    "multiprocessing": ("--n-jobs=2", "--par-dist=load", "--par-backend=multiprocessing"),
    "threading": ("--n-jobs=2", "--par-backend=threading"),
}


def recorded(pytester: pytest.Pytester, *args: str) -> dict[str, Any]:
    path = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--junitxml={path}", "-o", "junit_family=xunit1", *args
    )
    assert result.ret == 1, result.stdout.str()
    suite = ElementTree.parse(path).getroot().find("testsuite")
    assert suite is not None
    cases = {}
    for case in suite.iter("testcase"):
        properties = case.find("properties")
        cases[case.get("name")] = {
            "number": case.get("number"),
            "failed": case.find("failure") is not None,
            "properties": [
                (p.get("name"), p.get("value"))
                for p in (properties if properties is not None else [])
            ],
        }
    suite_properties = suite.find("properties")
    assert suite_properties is not None
    names = sorted((p.get("name"), p.get("value")) for p in suite_properties)
    return {"cases": cases, "suite": names}


@pytest.mark.parametrize("mode", list(MODES))
def test_the_file_has_what_a_serial_run_writes(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_suite=TESTS)
    serial = recorded(pytester)
    assert serial["suite"] == [(f"suite{n}", str(n)) for n in range(4)]
    assert serial["cases"]["test_records[2]"] == {
        "number": "2",
        "failed": False,
        "properties": [("square", "4")],
    }
    assert recorded(pytester, *MODES[mode]) == serial
