"""Where code runs: in a pytest-parproc worker (and which one) or in the main process.

No pytest import here: conftest files, fixtures and library code may ask cheaply.
"""

from __future__ import annotations

import os

#: Set in every worker process before its pytest session is built.
WORKER_ENV = "PYTEST_PARPROC_WORKER"
WORKER_COUNT_ENV = "PYTEST_PARPROC_WORKER_COUNT"

_current: tuple[str, int] | None = None


def is_worker() -> bool:
    """True in a pytest-parproc worker process (not in processes it starts)."""
    return _current is not None


def worker_id() -> str:
    """``w0``, ``w1``, ... in a worker; ``main`` when tests are not distributed."""
    return _current[0] if _current is not None else "main"


def worker_count() -> int:
    """How many workers the run has; 1 when tests are not distributed."""
    return _current[1] if _current is not None else 1


def enter_worker(name: str, count: int) -> None:
    """Mark this process as worker ``name`` of ``count`` (the plugin calls it, once)."""
    global _current
    _current = (name, count)
    os.environ[WORKER_ENV] = name
    os.environ[WORKER_COUNT_ENV] = str(count)
