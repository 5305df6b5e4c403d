"""skip, skipif, xfail (strict and not), xpass, and pytest's exit codes 0 to 5, as in a serial
run."""

from __future__ import annotations

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
def test_outcome_suite_matches_serial(pytester: pytest.Pytester, backend: str) -> None:
    copy_suite(pytester, "outcomes")
    serial = serial_run(pytester, "outcomes")
    parallel = run_suite(pytester, n_jobs=2, backend=backend)
    assert_same_results(serial, parallel)
    assert set(serial.tests["test_outcomes.py::test_xfail"]) >= {"call:xfailed"}
    assert "call:failed" in serial.tests["test_outcomes.py::test_xpass_strict"]
    parallel.result.assert_outcomes(passed=3, failed=2, skipped=3, xfailed=4, xpassed=1)


EXIT_CODE_SUITES = {
    pytest.ExitCode.OK: {"test_ok.py": "def test_a():\n    pass\n"},
    pytest.ExitCode.TESTS_FAILED: {"test_fail.py": "def test_a():\n    assert 0\n"},
    pytest.ExitCode.INTERRUPTED: {
        "test_ok.py": "def test_a():\n    pass\n",
        "test_broken.py": "import not_a_module_anywhere\n",
    },
    pytest.ExitCode.INTERNAL_ERROR: {
        "test_ok.py": "def test_a():\n    pass\n",
        "conftest.py": "def pytest_runtest_logreport(report):\n    raise RuntimeError('hook')\n",
    },
    pytest.ExitCode.NO_TESTS_COLLECTED: {"test_empty.py": "# no tests here\n"},
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("code", list(EXIT_CODE_SUITES), ids=lambda code: code.name)
@pytest.mark.slow
def test_exit_code_matches_serial(
    pytester: pytest.Pytester, backend: str, code: pytest.ExitCode
) -> None:
    for name, source in EXIT_CODE_SUITES[code].items():
        pytester.path.joinpath(name).write_text(source)
    serial = run_suite(pytester)
    parallel = run_suite(pytester, n_jobs=2, backend=backend)
    assert serial.exitstatus == code
    assert parallel.exitstatus == code, parallel.output


def test_usage_error_exit_code(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("--n-jobs=abc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
