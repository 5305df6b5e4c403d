"""Records, when PARPROC_TIMES names a file: each test's start and end (to check that tests in
the serial lane overlap no other), its tmp_path, whether each report's captured output, log
and warnings hold only its own lines."""

import contextlib
import os
import threading
import time
import warnings

import pytest

import pytest_parproc

_lock = threading.Lock()
_barrier: list[threading.Barrier] = []


def record(line):
    path = os.environ.get("PARPROC_TIMES")
    if path:
        with _lock, open(path, "a") as file:
            file.write(line + "\n")


def meet():
    """Wait for three other tests to get here too, when tests run in four threads or more: the
    tests calling it run at the same time, whatever the machine's load."""
    if pytest_parproc.worker_count() < 4:
        return
    with _lock:
        if not _barrier:
            _barrier.append(threading.Barrier(4, timeout=120))
    _barrier[0].wait()


@contextlib.contextmanager
def quiet():
    """What libraries (and pytest itself) do around noisy calls: on a test thread it must not
    silence the tests running beside it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(autouse=True)
def interval(request):
    record(f"start {request.node.nodeid} {time.monotonic_ns()}")
    yield
    record(f"end {request.node.nodeid} {time.monotonic_ns()}")


def _own_lines(report, text, kind):
    """The lines of one captured section that a test of test_output.py wrote about itself."""
    name = report.nodeid.split("::")[-1]
    lines = [line for line in text.splitlines() if line.strip()]
    strangers = [line for line in lines if name not in line]
    return len([line for line in lines if f"{name} {kind}" in line]), strangers


def pytest_runtest_logreport(report):
    if report.when != "call" or "test_prints" not in report.nodeid:
        return
    out, strangers_out = _own_lines(report, report.capstdout, "out")
    err, strangers_err = _own_lines(report, report.capstderr, "err")
    logs, strangers_log = _own_lines(report, report.caplog, "log")
    strangers = strangers_out + strangers_err + strangers_log
    verdict = "ok" if (out, err, logs, strangers) == (1000, 1000, 1, []) else "mixed"
    record(f"capture {verdict} {report.nodeid} out={out} err={err} log={logs} {strangers[:3]}")


def pytest_warning_recorded(warning_message, when, nodeid):
    if when == "runtest":
        record(f"warning {nodeid or '-'} {warning_message.message}")
