"""A failing test's or fixture's traceback is the serial run's, entry for entry, on every backend:
no frame of pytest-parproc in it (the threading backend's replacements of pytest's fixture
machinery run inside every fixture's set-up and teardown, and inside an in-process pytest run
that a test starts, as pytest's own test suite does through ``pytester``)."""

from __future__ import annotations

import re

import pytest
from compare import BACKENDS, assert_same_results, run_suite

pytest_plugins = ["pytester"]

SUITE = """
import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def base():
    return 1


@pytest.fixture
def broken(base):
    raise ValueError("broken fixture")


@pytest.fixture
def broken_teardown():
    yield 1
    raise RuntimeError("teardown broken")


@pytest.fixture(scope="module")
def module_broken():
    raise KeyError("module broken")


def test_setup(broken):
    pass


def test_teardown(broken_teardown):
    pass


def test_module(module_broken):
    pass


def helper():
    assert 1 == 2


def test_call():
    helper()


class TestClass:
    def test_method(self, broken):
        pass


def test_in_process_run(pytester):
    pytester.makeconftest(
        "import pytest\\n@pytest.fixture\\ndef hello(request):\\n    raise ValueError('xyz')\\n"
    )
    test = pytester.makepyfile("def test(hello):\\n    pass\\n")
    out = pytester.runpytest_inprocess(test, "-p", "no:randomly").stdout.str()
    assert "conftest.py:4: ValueError" in out
    assert out.count("_ _ _") == 0, out  # one entry: the fixture's own


@pytest.mark.parametrize("n", range(8))
def test_plain(n):
    pass
"""

#: a section's header: ``___ test_call ___`` or ``___ ERROR at setup of test_setup ___``
HEADER = re.compile(r"^_{3,} (.+?) _{3,}$")


def sections(output: str) -> dict[str, str]:
    """Each failure's or error's traceback as printed, by its header (their order varies)."""
    found: dict[str, str] = {}
    name = None
    for line in output.split("short test summary info", 1)[0].splitlines():
        header = HEADER.match(line)
        if header is not None:
            name = header.group(1)
            found[name] = ""
        elif line.startswith(("=", "- generated xml file")):
            name = None  # the end of the sections, another summary's start
        elif name is not None:
            found[name] += line + "\n"
    return {key: text.rstrip() for key, text in found.items()}


@pytest.mark.slow
@pytest.mark.parametrize("tb", ["auto", "long", "short"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_tracebacks_are_the_serial_run_s_entry_for_entry(
    pytester: pytest.Pytester, backend: str, tb: str
) -> None:
    pytester.makepyfile(test_tracebacks=SUITE)
    # (the file named: the in-process run's files lie under the folder, in the first run's
    # base temporary folder)
    serial = run_suite(pytester, "test_tracebacks.py", f"--tb={tb}")
    parallel = run_suite(pytester, "test_tracebacks.py", f"--tb={tb}", n_jobs=4, backend=backend)
    assert_same_results(serial, parallel)
    expected, found = sections(serial.output), sections(parallel.output)
    assert set(expected) == {
        "ERROR at setup of test_setup",
        "ERROR at teardown of test_teardown",
        "ERROR at setup of test_module",
        "test_call",
        "ERROR at setup of TestClass.test_method",
    }
    assert found == expected
    assert "pytest_parproc" not in parallel.output.split("short test summary info")[0]


@pytest.mark.slow  # waits on purpose: a time limit
def test_a_test_stopped_at_the_time_limit_shows_its_own_frame_last(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_limit="import time\n\ndef test_slow(monkeypatch):\n    time.sleep(5)\n"
        "\ndef test_other():\n    pass\n"
    )
    run = run_suite(pytester, "--par-timeout=0.5", n_jobs=2, backend="threading")
    (text,) = sections(run.output).values()
    assert text.rstrip().endswith("test_limit.py:4: Failed")
    assert "ran past the time limit" in text
    assert "setitimer" not in text and "pytest_parproc" not in text
