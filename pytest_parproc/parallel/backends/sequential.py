"""The sequential backend: a plain loop in the caller, what ``n_jobs=1`` means."""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..tasks import run_tasks
from .base import Batch, BatchOutcome, CallOptions, DoneCallback, ParallelBackendBase


class SequentialBackend(ParallelBackendBase):
    """Runs each batch at submission, in the calling thread. ``Parallel`` bypasses even this
    for n_jobs=1 and loops over the tasks directly; the class exists so the name can be
    chosen and registered like any other backend."""

    name = "sequential"
    supports_sharedmem = True

    def effective_n_jobs(self, n_jobs: int) -> int:
        return 1

    def start(self, n_jobs: int, options: CallOptions) -> int:
        return 1

    def submit(self, batch: Batch, on_done: DoneCallback) -> None:
        batch.mark_started()
        started = time.perf_counter()
        values, error = run_tasks(batch.tasks)
        on_done(batch, BatchOutcome(values, error, time.perf_counter() - started))

    def abort(self, batches: Sequence[Batch]) -> None:
        pass
