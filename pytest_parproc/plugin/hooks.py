"""Hooks for other plugins (``pytest_addhooks``): what a plugin needs to work beside
pytest-parproc without a special case here. A conftest or plugin implements them like any pytest
hook; a plugin that may run without pytest-parproc marks its implementations
``@pytest.hookimpl(optionalhook=True)``.

Worker hooks run in worker processes (the process backends); the threading backend has none.
The xdist conventions hold as well (``config.workerinput``, ``config.workeroutput``, the
``PYTEST_XDIST_*`` variables: ``compat.xdist``)."""

from __future__ import annotations

from typing import Any

import pytest

hookspec = pytest.hookspec  # (pluggy's HookspecMarker("pytest"))


def pytest_parproc_worker_started(config: pytest.Config, worker_id: str) -> None:
    """In a worker process, once its session is ready to run tests (taken over from the main
    process after a fork, or configured and collected anew), before its first test.
    ``worker_id`` is ``w0``, ``w1``, ... (a replacement worker gets a new one)."""


def pytest_parproc_worker_finishing(
    config: pytest.Config, worker_id: str, output: dict[str, Any]
) -> None:
    """In a worker process, as its session ends, after its last teardown. What a plugin puts in
    ``output`` (``config.workeroutput``: plain, picklable values) reaches the main process's
    ``pytest_parproc_worker_finished``. A worker that dies never gets here."""


def pytest_parproc_worker_finished(
    config: pytest.Config, worker_id: str, output: dict[str, Any]
) -> None:
    """In the main process: a worker's session ended; ``output`` is its ``workeroutput``."""


def pytest_parproc_worker_crashed(
    config: pytest.Config, worker_id: str, nodeid: str | None, phase: str | None, text: str
) -> None:
    """In the main process: a worker died. ``nodeid`` and ``phase`` name the test it was
    running and the phase it died in (None when it died outside any test); ``text`` is what
    the run reports about it. A fresh worker goes on with the tests left."""


@hookspec(firstresult=True)
def pytest_parproc_run_alone(item: pytest.Item) -> str | None:
    """Whether ``item`` must run with no other test beside it, and why (the first non-None
    answer counts). Process backends run such tests in the main process after the parallel
    part of the run; the threading backend runs them in its serial lane. The reason is shown
    in the threading backend's summary."""
