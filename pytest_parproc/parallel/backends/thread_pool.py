"""The threading backend: batches run in a pool of threads of the calling process."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..nesting import reset_nested_fallback, set_nested_fallback, thread_fallback
from ..tasks import run_tasks
from .base import Batch, BatchOutcome, CallOptions, DoneCallback, ParallelBackendBase

_STOP = None


class ThreadingBackend(ParallelBackendBase):
    """Threads share the caller's memory; nothing is serialized.

    Unlike joblib's threading backend, batches are auto-sized here too: joblib hands thread
    tasks out one at a time, which makes small tasks pay a queue round trip each.
    A thread cannot be killed: on a timeout or an error, queued batches are dropped and the
    caller gets its error at once, but a task already running finishes in the background.
    """

    name = "threading"
    supports_sharedmem = True
    reports_task_start = True

    def __init__(self, nesting_level: int | None = None, **backend_params: Any) -> None:
        super().__init__(nesting_level, **backend_params)
        self._queue: queue.SimpleQueue[tuple[Batch, DoneCallback] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()

    def start(self, n_jobs: int, options: CallOptions) -> int:
        self.n_jobs = n_jobs
        while len(self._threads) < n_jobs:
            thread = threading.Thread(
                target=self._work,
                name=f"parproc-thread-w{len(self._threads)}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return n_jobs

    def submit(self, batch: Batch, on_done: DoneCallback) -> None:
        self._queue.put((batch, on_done))

    def abort(self, batches: Sequence[Batch]) -> None:
        with self._lock:
            self._cancelled.update(batch.key for batch in batches)

    def stop(self) -> None:
        # Batches still queued belong to a call that is over (finished, failed or abandoned):
        # drop them, so the stop markers are seen next. Threads still busy with an abandoned
        # task are left to finish on their own (daemon threads); idle ones exit at once.
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._queue.put(_STOP)
        self._threads = []
        with self._lock:
            self._cancelled.clear()

    def _work(self) -> None:
        level = (self.nesting_level or 0) + 1
        token = set_nested_fallback(thread_fallback(self.nesting_level), level, "threads")
        try:
            while (item := self._queue.get()) is not None:
                batch, on_done = item
                with self._lock:
                    if batch.key in self._cancelled:
                        self._cancelled.discard(batch.key)
                        continue
                batch.mark_started()
                started = time.perf_counter()
                values, error = run_tasks(batch.tasks, batch.mark_task_started)
                on_done(batch, BatchOutcome(values, error, time.perf_counter() - started))
        finally:
            reset_nested_fallback(token)
