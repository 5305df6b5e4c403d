"""pytest-parproc: a joblib-style parallel engine, and a pytest plugin that runs tests on it.

The public names live in ``pytest_parproc.parallel`` and are re-exported here on first use
(see that package for why the import is lazy).
"""

from __future__ import annotations

from . import parallel

# Not ``typing.TYPE_CHECKING``: see ``pytest_parproc.parallel``.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .parallel import (
        Batch,
        BatchOutcome,
        CallOptions,
        Parallel,
        ParallelBackendBase,
        ParallelError,
        RemoteTraceback,
        TaskTimeoutError,
        TerminatedWorkerError,
        UnpicklableTaskError,
        WorkerCrashedError,
        WorkerStartError,
        cpu_count,
        delayed,
        effective_n_jobs,
        parallel_backend,
        parallel_config,
        register_parallel_backend,
    )

__version__ = "0.1.0"

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
    "__version__",
    "cpu_count",
    "delayed",
    "effective_n_jobs",
    "parallel_backend",
    "parallel_config",
    "register_parallel_backend",
]


def __getattr__(name: str) -> object:
    if name in parallel.__all__:
        value = getattr(parallel, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *parallel.__all__])
