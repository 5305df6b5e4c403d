"""The engine: joblib's ``Parallel`` / ``delayed`` API with our own backends; no pytest here.

Names are imported on first use: a worker process imports this package on its way to its
own small module, and must not pay for the whole engine before its first task.
"""

from __future__ import annotations

import importlib

# Not ``typing.TYPE_CHECKING``: importing typing costs a worker ~10 ms at start-up, and type
# checkers honour any constant of this name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._pool.worker import retire_worker
    from .api import Parallel, delayed
    from .backends.base import Batch, BatchOutcome, CallOptions, ParallelBackendBase
    from .backends.registry import register_parallel_backend
    from .config import effective_n_jobs, parallel_backend, parallel_config
    from .cpu import cpu_count
    from .errors import (
        ParallelError,
        RemoteTraceback,
        TaskTimeoutError,
        TerminatedWorkerError,
        UnpicklableTaskError,
        WorkerCrashedError,
        WorkerStartError,
    )

_WHERE = {
    "Parallel": "api",
    "delayed": "api",
    "Batch": "backends.base",
    "BatchOutcome": "backends.base",
    "CallOptions": "backends.base",
    "ParallelBackendBase": "backends.base",
    "register_parallel_backend": "backends.registry",
    "effective_n_jobs": "config",
    "parallel_backend": "config",
    "parallel_config": "config",
    "cpu_count": "cpu",
    "ParallelError": "errors",
    "RemoteTraceback": "errors",
    "TaskTimeoutError": "errors",
    "TerminatedWorkerError": "errors",
    "UnpicklableTaskError": "errors",
    "WorkerCrashedError": "errors",
    "WorkerStartError": "errors",
    "retire_worker": "_pool.worker",
}

__all__ = [
    "Batch",
    "BatchOutcome",
    "CallOptions",
    "Parallel",
    "ParallelBackendBase",
    "ParallelError",
    "RemoteTraceback",
    "TaskTimeoutError",
    "TerminatedWorkerError",
    "UnpicklableTaskError",
    "WorkerCrashedError",
    "WorkerStartError",
    "cpu_count",
    "delayed",
    "effective_n_jobs",
    "parallel_backend",
    "parallel_config",
    "register_parallel_backend",
    "retire_worker",
]


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
