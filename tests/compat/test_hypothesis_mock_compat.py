"""hypothesis and pytest-mock beside the plugin, on every backend and start mode.

hypothesis: ``@given`` tests pass and fail as serially, a failing property shows the serial
run's falsifying example, the example database (``.hypothesis/examples``) gets what a serial run
saves and gives it back to the next run, ``--hypothesis-show-statistics`` shows every test's
statistics, and ``--hypothesis-seed`` gives the serial run's outcomes and draws.

pytest-mock: ``mocker.patch``, ``patch.object``, ``patch.dict``, ``spy``, ``stopall`` and
pytest-mock's assertion messages are as serially, and on threads a test's patch of a module
attribute is never seen by a test running beside it (tests that request ``mocker`` run in the
serial lane there)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="the [plugins] extra: tox -e plugins installs it")
pytest.importorskip("pytest_mock", reason="the [plugins] extra: tox -e plugins installs it")

from hypothesis.database import DirectoryBasedExampleDatabase

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

MODES = {
    "loky-fork": ("--n-jobs=2", "--par-dist=load"),
    "loky-collect": ("--n-jobs=2", "--par-dist=load", "--par-start=collect"),
    "multiprocessing": ("--n-jobs=2", "--par-dist=load", "--par-backend=multiprocessing"),
    "threading": ("--n-jobs=2", "--par-backend=threading"),
}


@pytest.fixture(autouse=True)
def not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suites' pytest runs get hypothesis's default profile: under CI (``CI`` and the like,
    hypothesis's ``is_in_ci``) it loads its "ci" profile, which keeps no example database."""
    try:
        from hypothesis._settings import _CI_VARS as ci_variables
    except ImportError:  # (a hypothesis that moved it: the two that CI and tox set)
        ci_variables = {"CI": None, "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI": None}
    for name in ci_variables:
        monkeypatch.delenv(name, raising=False)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *args, timeout=120)


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Each test's outcome, from the short test summary (``-rA``)."""
    found = {}
    for line in result.outlines:
        match = re.match(r"(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)", line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


def failure(result: pytest.RunResult, name: str) -> list[str]:
    """The lines of the failure section of test ``name``, up to the next section (objects'
    addresses left out)."""
    lines = result.outlines
    header = re.compile(rf"_+ {re.escape(name)} _+$")
    start = next((at for at, line in enumerate(lines) if header.match(line)), None)
    assert start is not None, "\n".join(lines)
    section = []
    for line in lines[start + 1 :]:
        if re.match(r"(_{3,}|={3,}) ", line):
            break
        section.append(re.sub(r" at 0x[0-9a-f]+>", " at 0x...>", line))
    return section


# hypothesis -------------------------------------------------------------------------------

# (no deadline and no health checks: a loaded machine must not change the outcomes)
PROPERTIES = """
from hypothesis import HealthCheck, given, note, settings, strategies as st

calm = settings(deadline=None, suppress_health_check=list(HealthCheck))


@calm
@given(st.integers())
def test_holds(n):
    assert n + 0 == n


@calm
@given(st.integers(min_value=0, max_value=1000))
def test_falsified(n):
    note(f"noted {n}")
    assert n < 100
"""

DRAWS = """
import os
import pathlib

from hypothesis import HealthCheck, given, settings, strategies as st

calm = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))


def record(name, value):
    with pathlib.Path(os.environ["DRAWS"], name).open("a") as out:
        out.write(f"{value!r}\\n")


@calm
@given(st.integers(min_value=0, max_value=1000))
def test_bounded(n):
    record("bounded", n)


@calm
@given(st.integers(), st.text(max_size=5))
def test_unbounded(n, s):
    record("unbounded", (n, s))
"""

#: hypothesis draws some values from the constants of the "local" modules loaded (those outside
#: site-packages and the standard library). Where pytest_parproc is such a module (an editable
#: install, as in development), a parallel run loads modules of it that a serial run does not:
#: ``parallel/batching.py`` (``10_000``) on every backend, ``processes/rundir.py`` (``0o600``,
#: 384) in worker processes.
PARPROC_IS_LOCAL_CODE = (
    "site-packages"
    not in Path(
        # where the suites' pytest processes import it from (not this one's path, which may hold
        # the checkout: ``python -m pytest`` from its root)
        subprocess.run(
            [sys.executable, "-c", "import pytest_parproc; print(pytest_parproc.__file__)"],
            capture_output=True,
            text=True,
            check=True,
            cwd=tempfile.gettempdir(),
        ).stdout.strip()
    )
    .resolve()
    .parts
)


def example_database(folder: Path) -> dict[bytes, list[bytes]]:
    """What the example database holds for each test: the failing examples saved under its key
    (the keys of examples met on the way, ``.secondary``, differ from run to run)."""
    database = DirectoryBasedExampleDatabase(folder / ".hypothesis" / "examples")
    return {
        key: sorted(database.fetch(key))
        for key in database.fetch(b".hypothesis-keys")  # every key saved under
        if not key.endswith(b".secondary")
    }


def statistics(result: pytest.RunResult) -> dict[str, list[str]]:
    """``--hypothesis-show-statistics``: each test's lines, without times."""
    lines = result.outlines
    start = next(at for at, line in enumerate(lines) if "Hypothesis Statistics" in line)
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("="):
            break
        if line.endswith(":") and "::" in line:
            current = found.setdefault(line[:-1], [])
        elif line.strip() and "Typical runtimes" not in line:
            current.append(re.sub(r" \([\d.]+ seconds\)", "", line))
    return found


def hypothesis_run(pytester: pytest.Pytester, *args: str, fresh: bool) -> pytest.RunResult:
    if fresh:
        shutil.rmtree(pytester.path / ".hypothesis", ignore_errors=True)
    result = run(pytester, "--hypothesis-show-statistics", *args)
    assert result.ret == 1, result.stdout.str() + result.stderr.str()
    return result


@pytest.mark.parametrize("mode", list(MODES))
def test_hypothesis_fails_saves_and_replays_as_serially(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(test_props=PROPERTIES)
    serial = hypothesis_run(pytester, fresh=True)
    assert outcomes(serial) == {
        "test_props.py::test_holds": "PASSED",
        "test_props.py::test_falsified": "FAILED",
    }
    falsified = failure(serial, "test_falsified")
    assert "E       Failing test case: test_falsified(" in falsified
    assert "E           n=100," in falsified
    assert "E       noted 100" in falsified
    saved = example_database(pytester.path)
    assert [len(values) for values in saved.values()] == [1]  # test_falsified's example
    serial_statistics = statistics(serial)
    replayed = hypothesis_run(pytester, fresh=False)  # from the database
    assert failure(replayed, "test_falsified") == falsified
    replayed_statistics = statistics(replayed)
    assert "  - during reuse phase:" in replayed_statistics["test_props.py::test_falsified"]

    parallel = hypothesis_run(pytester, *MODES[mode], fresh=True)
    assert outcomes(parallel) == outcomes(serial)
    assert failure(parallel, "test_falsified") == falsified
    assert example_database(pytester.path) == saved
    found = statistics(parallel)
    assert set(found) == set(serial_statistics)
    # (how many examples a failing test tried depends on its random draws)
    assert found["test_props.py::test_holds"] == serial_statistics["test_props.py::test_holds"]
    replayed_in_parallel = hypothesis_run(pytester, *MODES[mode], fresh=False)
    assert failure(replayed_in_parallel, "test_falsified") == falsified
    assert statistics(replayed_in_parallel) == replayed_statistics


@pytest.mark.parametrize("mode", list(MODES))
def test_a_hypothesis_seed_gives_the_outcomes_of_a_serial_run(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(test_props=PROPERTIES)
    serial = hypothesis_run(pytester, "--hypothesis-seed=3", fresh=True)
    parallel = hypothesis_run(pytester, "--hypothesis-seed=3", *MODES[mode], fresh=True)
    assert outcomes(parallel) == outcomes(serial)
    assert failure(parallel, "test_falsified") == failure(serial, "test_falsified")
    assert not (pytester.path / ".hypothesis" / "examples").exists()  # a seed: no database


def draws(pytester: pytest.Pytester, *args: str) -> dict[str, list[str]]:
    folder = pytester.path / "draws"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRAWS", str(folder))
        result = run(pytester, "--hypothesis-seed=1", *args)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    return {path.name: path.read_text().splitlines() for path in folder.iterdir()}


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param(
            mode,
            marks=[
                pytest.mark.xfail(
                    reason="hypothesis draws constants from the modules of pytest_parproc that "
                    "only a parallel run imports, when the package is not under site-packages "
                    "(an editable install)",
                    strict=True,
                )
            ]
            if PARPROC_IS_LOCAL_CODE
            else [],
        )
        for mode in MODES
    ],
)
def test_a_hypothesis_seed_gives_the_draws_of_a_serial_run(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(test_draws=DRAWS)
    serial = draws(pytester)
    assert sorted(serial) == ["bounded", "unbounded"]
    assert len(serial["bounded"]) >= 50
    assert draws(pytester, *MODES[mode]) == serial


# pytest-mock ------------------------------------------------------------------------------

TARGET = """
import threading

VALUE = 1
patched = threading.Event()
read = threading.Event()


def double(n):
    return 2 * n


def hold_patch():
    # On a thread of the threading backend, a patching test waits (with a bound) for a test
    # running beside it to read; elsewhere (the main thread, a process) it goes on at once.
    if threading.current_thread() is not threading.main_thread():
        patched.set()
        read.wait(timeout=10)


def read_value():
    if threading.current_thread() is not threading.main_thread():
        patched.wait(timeout=3)
    try:
        return VALUE
    finally:
        read.set()
"""

MOCKER = """
import os

import target


def test_patch(mocker):
    getcwd = mocker.patch("os.getcwd", return_value="/patched")
    assert os.getcwd() == "/patched"
    getcwd.assert_called_once_with()


def test_patch_object_and_dict(mocker):
    mocker.patch.object(target, "VALUE", 2)
    mocker.patch.dict(os.environ, {"MOCKED": "yes"})
    assert (target.VALUE, os.environ["MOCKED"]) == (2, "yes")
    target.hold_patch()


def test_spy(mocker):
    spy = mocker.spy(target, "double")
    assert target.double(3) == 6
    spy.assert_called_once_with(3)
    assert spy.spy_return == 6


def test_stopall(mocker):
    mocker.patch.object(target, "VALUE", 99)
    mocker.stopall()
    assert target.VALUE == 1


def test_failing_mock_assertion(mocker):
    spy = mocker.spy(target, "double")
    target.double(3)
    spy.assert_called_once_with(4)


def test_sees_no_patch():
    assert target.read_value() == 1
    assert "MOCKED" not in os.environ
"""

# module_mocker's patches last until its module is torn down: a test of another module must
# not see them (a serial run has torn that module down before, or not set it up yet).
MODULE_MOCKER = """
import target


def test_module_patch(module_mocker):
    module_mocker.patch.object(target, "VALUE", 3)
    assert target.VALUE == 3
    target.hold_patch()
"""

READER = """
import target


def test_sees_no_module_patch():
    assert target.read_value() == 1
"""


@pytest.mark.parametrize("mode", list(MODES))
def test_mocker_patches_and_spies_as_serially(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(target=TARGET, test_mocker=MOCKER)
    serial = run(pytester, "-v")
    assert serial.ret == 1, serial.stdout.str()
    expected = {
        f"test_mocker.py::{name}": "PASSED"
        for name in (
            "test_patch",
            "test_patch_object_and_dict",
            "test_spy",
            "test_stopall",
            "test_sees_no_patch",
        )
    }
    expected["test_mocker.py::test_failing_mock_assertion"] = "FAILED"
    assert outcomes(serial) == expected
    message = failure(serial, "test_failing_mock_assertion")
    assert "E       assert (3,) == (4,)" in message  # pytest-mock's introspection

    parallel = run(pytester, "-v", *MODES[mode])
    assert parallel.ret == 1, parallel.stdout.str()
    assert outcomes(parallel) == expected
    assert failure(parallel, "test_failing_mock_assertion") == message
    if mode == "threading":
        parallel.stdout.fnmatch_lines(
            [
                "parproc: 5 of 6 tests ran alone, with no other test running (the serial lane):",
                "  5 requests mocker (patches process-wide state)",
            ]
        )
        assert "    test_mocker.py::test_sees_no_patch" not in parallel.outlines


@pytest.mark.parametrize("mode", list(MODES))
def test_a_module_mocker_patch_stays_in_its_module(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(target=TARGET, test_a_patches=MODULE_MOCKER, test_b_reads=READER)
    serial = run(pytester)
    assert serial.ret == 0, serial.stdout.str()
    parallel = run(pytester, *MODES[mode])
    assert outcomes(parallel) == outcomes(serial), parallel.stdout.str()
