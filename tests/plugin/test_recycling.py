"""--par-max-tasks-per-worker and --par-max-worker-memory: a spent worker ends its session
after a test, hands back the tests it had not run, and a fresh worker takes over."""

from __future__ import annotations

from collections import Counter

import pytest
from compare import assert_balanced_fixtures, copy_suite, run_suite, serial_run

pytest_plugins = ["pytester"]


PID_RECORDING = """
import os, pathlib
import pytest

@pytest.fixture(autouse=True)
def record_pid():
    with open(os.environ["PID_RECORD"], "a") as record:
        record.write(f"{os.getpid()}\\n")
"""


def recorded_pids(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, Counter[int]]:
    pytester.makeconftest(PID_RECORDING)
    record = pytester.path / "pids.txt"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PID_RECORD", str(record))
        result = pytester.runpytest_subprocess("--n-jobs=2", *args, timeout=180)
    return result, Counter(int(line) for line in record.read_text().split())


@pytest.mark.slow
def test_no_worker_runs_more_tests_than_allowed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_many="import pytest\n\n@pytest.mark.parametrize('n', range(20))\n"
        "def test_n(n):\n    pass\n"
    )
    result, per_process = recorded_pids(pytester, "--par-max-tasks-per-worker=3")
    result.assert_outcomes(passed=20)
    assert sum(per_process.values()) == 20
    assert max(per_process.values()) <= 3
    assert len(per_process) >= 7


@pytest.mark.slow
def test_fixtures_stay_balanced_and_calls_match_a_serial_run(pytester: pytest.Pytester) -> None:
    copy_suite(pytester, "fixtures")
    serial = serial_run(pytester, "fixtures")
    parallel = run_suite(pytester, "--par-max-tasks-per-worker=2", n_jobs=2)
    assert parallel.exitstatus == serial.exitstatus
    # A retiring worker's last test tears everything down: a module fixture's teardown error
    # lands on that test, which may be earlier in the module than in a serial run.
    assert set(parallel.tests) == set(serial.tests)
    for nodeid, phases in serial.tests.items():
        calls = [phase for phase in phases if phase.startswith(("setup", "call"))]
        assert [p for p in parallel.tests[nodeid] if p.startswith(("setup", "call"))] == calls
    assert_balanced_fixtures(parallel)


@pytest.mark.slow
def test_a_worker_over_the_memory_limit_is_replaced_after_its_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_few="import pytest\n\n@pytest.mark.parametrize('n', range(4))\n"
        "def test_n(n):\n    pass\n"
    )
    result, per_process = recorded_pids(pytester, "--par-max-worker-memory=1K")
    result.assert_outcomes(passed=4)
    assert sorted(per_process.values()) == [1, 1, 1, 1]  # every worker is over 1 KiB


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--par-max-tasks-per-worker=0",), "option --par-max-tasks-per-worker: expected a whole"),
        (("--par-max-tasks-per-worker=x",), "option --par-max-tasks-per-worker: expected a whole"),
        (("--par-max-worker-memory=lots",), "option --par-max-worker-memory: expected a size"),
        (
            ("--par-max-tasks-per-worker=5", "--par-backend=multiprocessing"),
            "option --par-max-tasks-per-worker: recycling workers needs the loky backend*",
        ),
    ],
)
def test_bad_recycling_limits_are_usage_errors(
    pytester: pytest.Pytester, args: tuple[str, ...], expected: str
) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("--n-jobs=2", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{expected}*"])
