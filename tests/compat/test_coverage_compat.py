"""pytest-cov beside the plugin: the figures of a parallel run equal the serial run's, on every
backend and start mode, with recycled workers, ``--cov-append`` and ``--cov-fail-under``; no
data file is left behind, and coverage no longer keeps workers from being forked."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytest_cov")

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

PACKAGE = """
def sign(x):
    if x > 0:
        return "positive"
    return "not positive"


def walk(x):
    total = 0
    for i in range(x):
        if i % 3:
            total += i
        else:
            total -= i
    return total


def teardown_helper():
    return "torn down"


def never_called():
    return 1
"""

TESTS = """
import pytest
from pkg.code import sign, teardown_helper, walk


@pytest.fixture(scope="module")
def module_resource():
    yield 1
    teardown_helper()  # measured in the worker's last teardown


@pytest.mark.parametrize("n", range(1, 6))
def test_walk_{k}(n, module_resource):
    assert walk(n + {k}) is not None


def test_sign_{k}():
    assert sign({k}) in ("positive", "not positive")
"""


def write_suite(pytester: pytest.Pytester) -> None:
    package = pytester.mkpydir("pkg")
    (package / "code.py").write_text(textwrap.dedent(PACKAGE))
    for k in range(4):
        pytester.makepyfile(**{f"test_part{k}": TESTS.replace("{k}", str(k))})


def run(pytester: pytest.Pytester, *args: str, report: str = "cov.json") -> tuple[Any, dict]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("PYTEST_PARPROC_N_JOBS", "PYTEST_PARPROC_BACKEND", "PYTEST_ADDOPTS"):
            patch.delenv(name, raising=False)
        result = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--cov=pkg",
            "--cov-branch",
            f"--cov-report=json:{report}",
            "--cov-report=term",
            *args,
            timeout=180,
        )
    path = pytester.path / report
    return result, json.loads(path.read_text()) if path.exists() else {}


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """What a reader of the report compares: totals, and per file the lines and branches."""
    files = {
        name: {
            key: data[key]
            for key in ("executed_lines", "missing_lines", "executed_branches", "missing_branches")
        }
        for name, data in report["files"].items()
    }
    return {"totals": report["totals"], "files": files}


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith(".coverage."))


@pytest.fixture
def serial(pytester: pytest.Pytester) -> dict[str, Any]:
    write_suite(pytester)
    result, report = run(pytester, report="serial.json")
    assert result.ret == 0, result.stdout.str()
    assert report["totals"]["missing_lines"] == 1  # never_called, and nothing else
    return figures(report)


@pytest.mark.parametrize(
    "args",
    [
        ("--n-jobs=2",),
        ("--n-jobs=2", "--par-start=collect"),
        ("--n-jobs=2", "--par-backend=multiprocessing"),
        ("--n-jobs=2", "--par-backend=threading"),
        ("--n-jobs=2", "--par-max-tasks-per-worker=3"),
    ],
    ids=["loky-fork", "loky-collect", "multiprocessing", "threading", "recycled-workers"],
)
def test_the_figures_equal_the_serial_runs(
    pytester: pytest.Pytester, serial: dict[str, Any], args: tuple[str, ...]
) -> None:
    result, report = run(pytester, *args)
    output = result.stdout.str()
    assert result.ret == 0, output
    assert figures(report) == serial, output
    assert leftovers(pytester.path) == []
    if args == ("--n-jobs=2",):
        assert "workers forked after collection took over its session" in output


def test_fail_under_decides_as_serially(pytester: pytest.Pytester, serial: dict[str, Any]) -> None:
    percent = serial["totals"]["percent_covered"]
    for threshold, status in ((int(percent) - 1, 0), (int(percent) + 1, 1)):
        serial_result, _ = run(pytester, f"--cov-fail-under={threshold}", report="s.json")
        parallel, _ = run(pytester, "--n-jobs=2", f"--cov-fail-under={threshold}")
        assert serial_result.ret == parallel.ret == status, parallel.stdout.str()


def test_append_adds_to_the_data_of_an_earlier_run(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    reports = []
    for extra in ((), ("--n-jobs=2",)):
        (pytester.path / ".coverage").unlink(missing_ok=True)
        first, _ = run(pytester, *extra, "test_part0.py", report="first.json")
        assert first.ret == 0, first.stdout.str()
        second, report = run(pytester, *extra, "--cov-append", "test_part1.py")
        assert second.ret == 0, second.stdout.str()
        reports.append(figures(report))
    assert reports[1] == reports[0]
    assert leftovers(pytester.path) == []


def measured_contexts(folder: Path) -> dict[str, set[str]]:
    """Per line of pkg/code.py, the tests that ran it (``--cov-context=test``)."""
    from coverage import CoverageData

    data = CoverageData(str(folder / ".coverage"))
    data.read()
    (path,) = [name for name in data.measured_files() if name.endswith("code.py")]
    return {
        str(line): {context.split("|")[0] for context in contexts}
        for line, contexts in (data.contexts_by_lineno(path) or {}).items()
    }


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_per_test_contexts_equal_the_serial_runs(pytester: pytest.Pytester, backend: str) -> None:
    write_suite(pytester)
    found = []
    for extra in ((), ("--n-jobs=2", f"--par-backend={backend}")):
        result, _ = run(pytester, "--cov-context=test", *extra)
        assert result.ret == 0, result.stdout.str()
        found.append(measured_contexts(pytester.path))
    assert found[1] == found[0]
    assert any(len(tests) > 1 for tests in found[0].values())  # lines shared by several tests
