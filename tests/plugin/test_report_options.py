"""The options of what a run shows of itself (``--par-progress``, ``--par-slow``,
``--par-report``, ``--par-trace``): bad values are usage errors naming where they came from,
before any test runs; paths are taken from where pytest starts, or from the ini file's folder."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]


def usage_error(pytester: pytest.Pytester, *args: str) -> str:
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "1 passed" not in result.stdout.str()  # checked before any test ran
    return result.stderr.str()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--par-slow=-1",), ["option --par-slow", "greater than 0", "'-1'"]),
        (("--par-slow=soon",), ["option --par-slow", "'soon'"]),
        (("--par-progress=fancy",), ["option --par-progress", "auto, bar, off", "'fancy'"]),
        (("--par-report=no/such/folder/run.html",), ["option --par-report", "does not exist"]),
        (("--par-trace=no/such/folder/run.json",), ["option --par-trace", "does not exist"]),
        (("--par-report=.",), ["option --par-report", "is a folder"]),
        (("--par-trace=",), ["option --par-trace", "expected a file path"]),
    ],
)
def test_bad_command_line_values(
    pytester: pytest.Pytester, args: tuple[str, ...], expected: list[str]
) -> None:
    # (a serial run too: the files are written by serial runs as well, and a typo costs no run)
    for run_args in (args, (*args, "--n-jobs=2")):
        message = usage_error(pytester, *run_args)
        for text in expected:
            assert text in message, message


def test_bad_environment_value(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_PARPROC_PROGRESS", "loud")
    message = usage_error(pytester, "--n-jobs=2")
    assert "environment variable PYTEST_PARPROC_PROGRESS" in message and "'loud'" in message


def test_bad_ini_values(pytester: pytest.Pytester) -> None:
    ini = pytester.makeini("[pytest]\npar_slow = 0\n")
    message = usage_error(pytester)
    assert f"ini option par_slow in {ini}" in message and "'0'" in message
    ini = pytester.makeini("[pytest]\npar_report = missing/page.html\n")
    message = usage_error(pytester)
    assert f"ini option par_report in {ini}" in message
    assert str(pytester.path / "missing") in message


def test_paths_in_an_ini_file_are_taken_from_its_folder(pytester: pytest.Pytester) -> None:
    (pytester.path / "out").mkdir()
    (pytester.path / "sub").mkdir()
    pytester.makeini("[pytest]\npar_trace = out/trace.json\n")
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest("sub/..", f"--rootdir={pytester.path}")
    assert result.ret == 0
    trace = json.loads((pytester.path / "out" / "trace.json").read_text())
    names = {event["name"] for event in trace["traceEvents"]}
    assert "test_one.py::test_one" in names


def test_a_serial_run_writes_its_trace_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    result = pytester.runpytest("--par-trace=trace.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["parproc: trace written to *trace.json"])
    trace = json.loads((pytester.path / "trace.json").read_text())
    lanes = {
        event["tid"]: event["args"]["name"]
        for event in trace["traceEvents"]
        if event["name"] == "thread_name"
    }
    phases = [
        (event["name"], event["cat"], lanes[event["tid"]])
        for event in trace["traceEvents"]
        if event["ph"] == "X" and event["cat"] in ("setup", "call", "teardown")
    ]
    assert len(phases) == 6
    main_thread = "main thread (tests run one after another in this process)"
    assert {lane for _, _, lane in phases} == {main_thread}


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    text = pytester.runpytest("--help").stdout.str()
    names = ("--par-progress", "--par-slow", "--par-report", "--par-trace", "PYTEST_PARPROC_SLOW")
    for name in names:
        assert name in text
