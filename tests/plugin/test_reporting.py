"""-v, -q, -rA, --durations, captured output, -s, and the per-worker timing table."""

from __future__ import annotations

import re

import pytest
from compare import (
    BACKENDS,
    assert_same_results,
    copy_suite,
    run_suite,
    serial_run,
)

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow
def test_verbose_report_lines_and_durations(pytester: pytest.Pytester, backend: str) -> None:
    copy_suite(pytester, "reporting")
    args = ("-v", "-rA", "--durations=3")
    serial = serial_run(pytester, "reporting", *args)
    parallel = run_suite(pytester, *args, n_jobs=2, backend=backend)
    assert_same_results(serial, parallel)
    output = parallel.output
    for nodeid in serial.tests:
        assert re.search(rf"{re.escape(nodeid)} (PASSED|FAILED)", output), nodeid
    assert "PASSED test_reporting.py::test_prints" in output  # -rA lists passes
    assert "PRINTED-BY-TEST" in output  # -rA shows captured output of passing tests
    assert "output of a failing test" in output
    # The workers' durations reach --durations. Among the three, not necessarily first: on a
    # loaded machine another phase may take as long as the test's half-second sleep.
    durations = output.split("slowest 3 durations")[1].splitlines()[1:4]
    assert any("test_reporting.py::test_slowest" in line for line in durations), durations


@pytest.mark.parametrize("backend", BACKENDS)
def test_dash_s_lets_test_output_through(pytester: pytest.Pytester, backend: str) -> None:
    copy_suite(pytester, "reporting")
    parallel = run_suite(pytester, "-s", "-k", "prints", n_jobs=2, backend=backend)
    assert parallel.exitstatus == 0
    assert "PRINTED-BY-TEST" in parallel.result.stdout.str()


@pytest.mark.slow
def test_timing_table(pytester: pytest.Pytester) -> None:
    copy_suite(pytester, "reporting")
    parallel = run_suite(pytester, n_jobs=2, backend="loky")
    lines = parallel.result.stdout.lines
    header = next(i for i, line in enumerate(lines) if "parproc: 2 workers" in line and "=" in line)
    assert lines[header + 1].split() == [
        "worker",
        "pid",
        "tests",
        "busy",
        "s",
        "idle",
        "s",
        "start-up",
        "s",
        "utilization",
    ]
    rows = [lines[header + 2].split(), lines[header + 3].split()]
    assert sorted(row[0] for row in rows) == ["w0", "w1"]
    assert sum(int(row[2]) for row in rows) == 11  # every test counted once
    for row in rows:
        assert int(row[1]) > 0
        assert all(float(value) >= 0 for value in row[3:6])
        assert row[6].endswith("%")
    assert lines[header + 4] == "start-up: workers forked after collection took over its session"
    total = lines[header + 5]
    assert re.match(r"total: wall [\d.]+ s, summed test time [\d.]+ s, speed-up [\d.]+x", total)


@pytest.mark.slow
def test_timing_summary_is_one_line_under_quiet(pytester: pytest.Pytester) -> None:
    copy_suite(pytester, "reporting")
    parallel = run_suite(pytester, "-q", n_jobs=2, backend="loky")
    matching = [line for line in parallel.result.stdout.lines if "parproc" in line]
    assert len(matching) == 1
    assert re.match(r"parproc: 2 workers \(loky\): wall [\d.]+ s", matching[0])
    quieter = run_suite(pytester, "-qq", n_jobs=2, backend="loky")
    assert not [line for line in quieter.result.stdout.lines if "parproc" in line]


def test_the_start_up_line_says_how_process_workers_started() -> None:
    from pytest_parproc.plugin.messages import TaskResult
    from pytest_parproc.plugin.timing import RunTiming

    timing = RunTiming(started_at=0.0)
    for worker_id, inherited in (("w0", True), ("w1", False)):
        result = TaskResult(worker_id=worker_id, pid=1, startup_s=0.1, ready_at=0.1)
        result.inherited = inherited
        timing.add(result)
    timing.fork_blocker = None
    timing.wall_s = 1.0
    [line] = [line for line in timing.lines(0, "loky") if line.startswith("start-up:")]
    assert line.startswith("start-up: 1 of 2 workers forked after collection")
    assert not [line for line in timing.lines(0, "threading") if line.startswith("start-up")]
