"""pytest-parproc: a joblib-style parallel engine, and a pytest plugin that runs tests on it."""

from __future__ import annotations

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
