"""The engine: joblib's ``Parallel`` / ``delayed`` API with our own backends; no pytest here."""

from __future__ import annotations

from .api import Parallel
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
from .tasks import delayed

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
]
