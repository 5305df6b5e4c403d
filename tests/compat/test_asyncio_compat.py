"""pytest-asyncio beside the plugin: async tests and fixtures pass as serially on every
backend; on threads each test runs in an event loop of its own, and tests that share a wider
loop run in the serial lane."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_asyncio", reason="the [plugins] extra: tox -e plugins installs it")

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

TESTS = """
import asyncio
import threading

import pytest
import pytest_asyncio

running = {}

@pytest_asyncio.fixture
async def resource():
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    yield loop
    await asyncio.sleep(0)
    assert asyncio.get_running_loop() is loop

@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared():
    await asyncio.sleep(0)
    return "shared"

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(8))
async def test_own_loop(n, resource, shared):
    loop = asyncio.get_running_loop()
    assert resource is loop  # the fixture ran in the test's own loop
    assert shared == "shared"
    running[n] = loop
    await asyncio.sleep(0.02)
    assert asyncio.get_running_loop() is loop

module_loops = set()

@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("n", range(3))
async def test_module_loop(n):
    module_loops.add(id(asyncio.get_running_loop()))
    await asyncio.sleep(0.01)
    assert len(module_loops) == 1
"""

MODES = {
    "loky-fork": ("--n-jobs=2", "--par-dist=load"),
    "loky-collect": ("--n-jobs=2", "--par-dist=load", "--par-start=collect"),
    "multiprocessing": ("--n-jobs=2", "--par-backend=multiprocessing"),
    "threading": ("--n-jobs=3", "--par-backend=threading", "-v"),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_async_tests_pass_as_serially(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_suite=TESTS)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    serial = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    serial.assert_outcomes(passed=11)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *MODES[mode], timeout=120)
    result.assert_outcomes(passed=11)
    if mode == "threading":
        result.stdout.fnmatch_lines(
            [
                "parproc: 3 of 11 tests ran alone*",
                "*3 pytest-asyncio runs it in the event loop of its module*",
            ]
        )
