"""The hooks pytest-parproc offers other plugins (``pytest_parproc.plugin.hooks``), implemented
in a conftest: each is called where and with what its documentation says."""

from __future__ import annotations

import json

import pytest
from compare import PROCESS_BACKENDS

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

CONFTEST = """
import json, os, pathlib
import pytest

def note(config, **fields):
    with open(config.rootpath / "hooks.jsonl", "a") as file:
        file.write(json.dumps({"pid": os.getpid(), **fields}) + "\\n")

def pytest_parproc_worker_started(config, worker_id):
    note(config, hook="started", worker=worker_id)
    config.parproc_tests = 0

def pytest_runtest_call(item):
    if hasattr(item.config, "parproc_tests"):
        item.config.parproc_tests += 1

def pytest_parproc_worker_finishing(config, worker_id, output):
    output["tests"] = config.parproc_tests

def pytest_parproc_worker_finished(config, worker_id, output):
    note(config, hook="finished", worker=worker_id, tests=output.get("tests"))

def pytest_parproc_worker_crashed(config, worker_id, nodeid, phase, text):
    note(config, hook="crashed", worker=worker_id, nodeid=nodeid, phase=phase)

def pytest_parproc_run_alone(item):
    if item.get_closest_marker("alone"):
        return "it says so"

def pytest_configure(config):
    config.addinivalue_line("markers", "alone: run alone")
"""

TESTS = """
import os
import pytest

@pytest.mark.parametrize("n", range(6))
def test_plain(n):
    pass

def test_dies():
    if os.environ.get("DIE"):
        os._exit(3)

@pytest.mark.alone
def test_alone():
    assert "PYTEST_XDIST_WORKER" not in os.environ  # the main process, after the others
"""


def notes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, die: bool, *args: str
) -> list[dict[str, object]]:
    path = pytester.path / "hooks.jsonl"
    path.unlink(missing_ok=True)
    with monkeypatch.context() as patch:
        if die:
            patch.setenv("DIE", "1")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)
    result.assert_outcomes(passed=8 - die, failed=int(die))
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("start", ["fork", "collect"])
@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_worker_hooks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backend: str, start: str
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=TESTS)
    args = ("--n-jobs=2", f"--par-backend={backend}", f"--par-start={start}")
    found = notes(pytester, monkeypatch, False, *args)
    finished = [note for note in found if note["hook"] == "finished"]
    started = [note for note in found if note["hook"] == "started"]
    # started in each worker process, with its id; finished in the main process, for each
    assert len({note["worker"] for note in started}) == len(started) >= 2
    assert len({note["pid"] for note in finished}) == 1
    assert finished[0]["pid"] not in {note["pid"] for note in started}
    assert sorted(note["worker"] for note in finished) == sorted(note["worker"] for note in started)
    # what the workers counted travelled back: 7 tests (test_alone ran in the main process)
    assert sum(int(str(note["tests"])) for note in finished) == 7

    found = notes(pytester, monkeypatch, True, *args)
    crashed = [note for note in found if note["hook"] == "crashed"]
    assert [(note["nodeid"], note["phase"]) for note in crashed] == [
        ("test_suite.py::test_dies", "call")
    ]
    assert crashed[0]["pid"] not in {note["pid"] for note in found if note["hook"] == "started"}


def test_run_alone_on_threads(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_suite="""
        import pytest

        @pytest.mark.parametrize("n", range(3))
        def test_plain(n):
            pass

        @pytest.mark.alone
        def test_alone():
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--n-jobs=2", "--par-backend=threading", "-v", timeout=120
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["parproc: 1 of 4 tests ran alone*", "*1 it says so*"])
