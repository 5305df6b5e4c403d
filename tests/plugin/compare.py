"""Run a suite with and without the plugin in pytester subprocesses, and compare the runs."""

from __future__ import annotations

import importlib.util
import json
import shutil
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Every backend that runs tests in worker processes.
PROCESS_BACKENDS = ("loky", "multiprocessing")
#: Every backend the plugin distributes tests with: the process ones and threads.
BACKENDS = (*PROCESS_BACKENDS, "threading")
#: The dask backend (a LocalCluster the run starts), where dask.distributed is installed.
DASK = ("dask",) if importlib.util.find_spec("distributed") else ()

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "suites"
RECORDER = Path(__file__).with_name("outcomes_recorder.py")


@dataclass
class Run:
    result: pytest.RunResult
    exitstatus: int
    tests: dict[str, list[str]]
    junit: dict[str, str]
    events: list[tuple[str, int]]

    @property
    def output(self) -> str:
        return self.result.stdout.str() + self.result.stderr.str()


def copy_suite(pytester: pytest.Pytester, name: str) -> None:
    shutil.copytree(EXAMPLES / name, pytester.path, dirs_exist_ok=True)


def run_suite(
    pytester: pytest.Pytester,
    *args: str,
    n_jobs: int | None = None,
    backend: str | None = None,
) -> Run:
    """One run in a subprocess, with outcomes, junitxml and fixture events recorded."""
    tag = f"{backend or 'serial'}-{n_jobs or 0}"
    outcomes = pytester.path / f".outcomes-{tag}.json"
    junit = pytester.path / f".junit-{tag}.xml"
    events = pytester.path / f".events-{tag}.txt"
    shutil.copy(RECORDER, pytester.path / RECORDER.name)
    options = ["-p", "outcomes_recorder", f"--junitxml={junit}", "-p", "no:randomly"]
    if n_jobs is not None:
        options.append(f"--n-jobs={n_jobs}")
    if backend is not None:
        options.append(f"--par-backend={backend}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PARPROC_OUTCOMES", str(outcomes))
        patch.setenv("PARPROC_EVENTS", str(events))
        for name in ("PYTEST_PARPROC_N_JOBS", "PYTEST_PARPROC_BACKEND", "PYTEST_ADDOPTS"):
            patch.delenv(name, raising=False)
        result = pytester.runpytest_subprocess(*options, *args, timeout=180)
    recorded = json.loads(outcomes.read_text()) if outcomes.exists() else {}
    return Run(
        result=result,
        exitstatus=int(result.ret),
        tests=recorded.get("tests", {}),
        junit=_junit_cases(junit),
        events=_events(events),
    )


def _junit_cases(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    cases = {}
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
        cases[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return cases


def _events(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        event, pid = line.rsplit(" ", 1)
        found.append((event, int(pid)))
    return found


def assert_same_results(serial: Run, parallel: Run) -> None:
    """Same exit code, same phases and outcomes per test id, same junitxml test cases."""
    assert parallel.exitstatus == serial.exitstatus, parallel.output
    assert {k: sorted(v) for k, v in parallel.tests.items()} == {
        k: sorted(v) for k, v in serial.tests.items()
    }, parallel.output
    assert parallel.junit == serial.junit, parallel.output


def assert_balanced_fixtures(run: Run, concurrent: tuple[str, ...] = ()) -> None:
    """Every setup has exactly one teardown in the same process, and a fixture is never set up
    twice at once in one process (except those starting with a name in ``concurrent``: function
    fixtures of tests that run at the same time in threads)."""
    active: Counter[tuple[str, int]] = Counter()
    for event, pid in run.events:
        kind, name = event.split(" ", 1)
        if name.startswith(concurrent) and concurrent:
            active[(name, pid)] += 1 if kind == "setup" else -1
            continue
        if kind == "setup":
            assert active[(name, pid)] == 0, f"{name} set up twice at once in {pid}"
            active[(name, pid)] += 1
        else:
            assert active[(name, pid)] == 1, f"{name} torn down without a setup in {pid}"
            active[(name, pid)] -= 1
    assert not +active, f"set up and never torn down: {sorted(+active)}"


def setups(run: Run, name: str) -> Counter[int]:
    """How many times fixture ``name`` was set up, per process id."""
    return Counter(pid for event, pid in run.events if event == f"setup {name}")


_serial_cache: dict[tuple[str, ...], Run] = {}


def serial_run(pytester: pytest.Pytester, suite: str, *args: str) -> Run:
    """The serial run of a suite, made once per test session (it does not depend on where the
    suite was copied, only on what it holds)."""
    key = (suite, *args)
    if key not in _serial_cache:
        _serial_cache[key] = run_suite(pytester, *args)
    return _serial_cache[key]
