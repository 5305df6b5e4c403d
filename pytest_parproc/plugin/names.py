"""The names the plugin registers with pytest: plugin objects, markers and ini keys."""

from __future__ import annotations

import pytest

#: Registered (under this name) in a worker's own pytest session; the plugin stays passive there.
WORKER_PLUGIN_NAME = "parproc-worker"
#: The controller of a parallel run, registered in the main process.
CONTROLLER_NAME = "parproc-controller"
#: ``@pytest.mark.parproc_group(name)``: with ``--par-dist=loadgroup``, one worker, in order.
GROUP_MARK = "parproc_group"
#: ``@pytest.mark.parproc_serial``: with ``--par-backend=threading``, the test runs alone.
SERIAL_MARK = "parproc_serial"
#: The ini key listing tests that run alone under ``--par-backend=threading``.
SERIAL_INI = "parproc_serial"
#: pytest-run-parallel's marker for tests that must not run in threads (read, not registered).
THREAD_UNSAFE_MARK = "thread_unsafe"


def add_ini(parser: pytest.Parser) -> None:
    parser.addini(
        SERIAL_INI,
        "tests that run alone under --par-backend=threading: node ids, id prefixes (a file, "
        "a directory, a class) or glob patterns, one per line",
        type="linelist",
        default=[],
    )


def register_markers(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SERIAL_MARK}: with --par-backend=threading, run this test alone (no other test runs "
        "in the process meanwhile)",
    )
    config.addinivalue_line(
        "markers",
        f"{GROUP_MARK}(name): with --par-dist=loadgroup, the tests of a group run in one "
        "worker, in collection order (pytest-parproc)",
    )
