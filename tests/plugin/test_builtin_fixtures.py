"""tmp_path and tmp_path_factory (distinct per worker), capsys, capfd, caplog, monkeypatch,
recwarn, the warnings summary, record_property and user_properties in --junitxml."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

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
def test_builtin_fixture_suite_matches_serial(pytester: pytest.Pytester, backend: str) -> None:
    copy_suite(pytester, "builtins")
    serial = serial_run(pytester, "builtins")
    basetemp = pytester.path / "base"
    parallel = run_suite(pytester, f"--basetemp={basetemp}", n_jobs=2, backend=backend)
    assert_same_results(serial, parallel)
    output = parallel.output
    # The warnings summary lists what the workers' tests warned about.
    assert "shown in the warnings summary" in output
    assert "a warning class defined in a test" in output
    assert "DeprecationWarning" in output
    # Captured output and log records are attached to the failing test's report.
    assert "printed before failing" in output
    assert "logged before failing" in output
    # Each worker process has its own directory under the base temporary directory; threads
    # share the process's, as a serial run would (tmp_path stays distinct per test).
    folders = sorted(path.name for path in basetemp.iterdir() if path.is_dir())
    if backend == "threading":
        assert folders and not set(folders) & {"w0", "w1"}
    else:
        assert folders and set(folders) <= {"w0", "w1"}
    # record_property and user_properties reach --junitxml.
    junit = ElementTree.parse(pytester.path / f".junit-{backend}-2.xml").getroot()
    properties = {(prop.get("name"), prop.get("value")) for prop in junit.iter("property")}
    assert {("answer", "42"), ("worker_pid_is_int", "True"), ("custom", "value")} <= properties


def test_without_the_tmpdir_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    run = run_suite(pytester, "-p", "no:tmpdir", n_jobs=2, backend="loky")
    assert run.exitstatus == 0, run.output


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow
def test_report_attributes_that_cannot_be_pickled(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makeconftest(
        """
        import threading
        import pytest

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_makereport(item, call):
            report = yield
            report.lock = threading.Lock()
            return report
        """
    )
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    assert 0\n")
    serial = run_suite(pytester)
    parallel = run_suite(pytester, n_jobs=2, backend=backend)
    assert_same_results(serial, parallel)


@pytest.mark.slow
def test_legacy_tmpdir_agrees_in_workers_that_collect(pytester: pytest.Pytester) -> None:
    """Workers that start a new interpreter (not forked) build their own session: the legacy
    and pathlib factories agree there too."""
    copy_suite(pytester, "builtins")
    run = run_suite(pytester, "test_legacy_tmpdir.py", "--par-start=collect", n_jobs=2)
    run.result.assert_outcomes(passed=7)
