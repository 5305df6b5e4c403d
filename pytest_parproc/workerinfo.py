"""Where code runs: in a pytest-parproc worker (and which one) or in the main process.

No pytest import here: conftest files, fixtures and library code may ask cheaply.
"""

from __future__ import annotations

import os
import threading

#: Set in every worker process before its pytest session is built.
WORKER_ENV = "PYTEST_PARPROC_WORKER"
WORKER_COUNT_ENV = "PYTEST_PARPROC_WORKER_COUNT"

_current: tuple[str, int] | None = None
#: a thread of the main process running tests (the threading backend)
_thread = threading.local()


def _which() -> tuple[str, int] | None:
    found: tuple[str, int] | None = getattr(_thread, "current", None)
    return found if found is not None else _current


def is_worker() -> bool:
    """True in a pytest-parproc worker: a worker process (not the processes it starts), or a
    thread that runs tests with ``--par-backend=threading``."""
    return _which() is not None


def worker_id() -> str:
    """``w0``, ``w1``, ... in a worker; ``main`` when tests are not distributed."""
    current = _which()
    return current[0] if current is not None else "main"


def worker_count() -> int:
    """How many workers the run has; 1 when tests are not distributed."""
    current = _which()
    return current[1] if current is not None else 1


def enter_worker(name: str, count: int) -> None:
    """Mark this process as worker ``name`` of ``count`` (the plugin calls it, once)."""
    global _current
    _current = (name, count)
    os.environ[WORKER_ENV] = name
    os.environ[WORKER_COUNT_ENV] = str(count)


def enter_thread_worker(name: str, count: int) -> None:
    """Mark the calling thread as worker ``name`` of ``count`` while it runs a test."""
    _thread.current = (name, count)


def leave_thread_worker() -> None:
    _thread.current = None


def process_worker_id() -> str:
    """The worker id of this process (``main`` for the threading backend's one process)."""
    return _current[0] if _current is not None else "main"
