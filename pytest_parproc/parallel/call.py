"""One parallel call of ``Parallel``: what is buffered, in flight, done and not yet yielded."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .backends.base import Batch, BatchOutcome, CallOptions, Task
from .batching import BatchSizer
from .config import parse_pre_dispatch
from .errors import TaskTimeoutError, WorkerCrashedError

if TYPE_CHECKING:
    from .api import Parallel

_call_ids = itertools.count(1)

#: put in a call's queue of completed batches to cancel it from another thread
CANCELLED: Any = Batch(0, -1, [])


@dataclass(frozen=True)
class Settings:
    """What each call of one ``Parallel`` takes from its arguments."""

    return_as: str
    pre_dispatch: int | str
    batch_size: int | str
    options: CallOptions


def check_task(task: object, position: int) -> Task:
    if type(task) is tuple and len(task) == 3 and callable(task[0]):
        return task
    raise TypeError(
        f"Parallel expects calls built with delayed(function)(*args, **kwargs); "
        f"item {position} of the input is {task!r}"
    )


class ParallelRun:
    """The state of one parallel call: what is buffered, in flight, done and not yet yielded."""

    def __init__(
        self, parallel: Parallel, tasks: Iterator[Task], known_total: int | None = None
    ) -> None:
        settings = parallel._settings
        self.options = settings.options
        self.backend = parallel._backend
        self.n_jobs = parallel.n_jobs
        self.settings = settings
        self.call_id = next(_call_ids)
        self.tasks = tasks
        self.position = 0
        self.buffer: deque[Task] = deque()
        self.exhausted = False
        self.in_flight: dict[int, Batch] = {}
        self.completed: queue.SimpleQueue[tuple[Batch, BatchOutcome]] = queue.SimpleQueue()
        self.done = threading.Event()  # the call's generator has ended
        self.on_done: Callable[[Batch, BatchOutcome], None] = self._on_done
        # One task per batch where a task must be stopped or blamed alone: a process worker is
        # killed as a whole, and a dead one takes its whole batch with it.
        self.one_per_batch = self.backend.uses_processes and (
            self.options.timeout_s is not None or self.options.crash_policy == "isolate"
        )
        self.sizer = BatchSizer(1 if self.one_per_batch else settings.batch_size, self.n_jobs)
        limit = pre_dispatch = parse_pre_dispatch(settings.pre_dispatch, self.n_jobs)
        if self.options.timeout_s is not None and not self.backend.reports_task_start:
            # The backend cannot tell when a task starts, so keep no more in flight than there
            # are workers: then a batch starts when it is dispatched.
            limit = self.n_jobs if limit is None else min(limit, self.n_jobs)
        self.max_in_flight = limit
        self.parallel = parallel
        parallel._start_progress(self.n_jobs, known_total, pre_dispatch or 0)

    def _on_done(self, batch: Batch, outcome: BatchOutcome) -> None:
        self.completed.put((batch, outcome))

    def _fill_buffer(self, wanted: int) -> None:
        while not self.exhausted and len(self.buffer) < wanted:
            chunk = list(itertools.islice(self.tasks, wanted - len(self.buffer)))
            if len(chunk) < wanted - len(self.buffer):
                self.exhausted = True
                self.parallel.n_tasks = self.position + len(self.buffer) + len(chunk)
            for task in chunk:
                self.buffer.append(check_task(task, self.position + len(self.buffer)))

    def dispatch(self) -> None:
        """Send batches until the pre-dispatch limit is reached or the input is used up."""
        while self.max_in_flight is None or len(self.in_flight) < self.max_in_flight:
            size = self.sizer.size
            wanted = size * self.n_jobs * 2
            if self.sizer.fixed is not None and self.max_in_flight is not None:
                # A fixed batch size has no tail to cut: read only what is sent now, so that
                # pre_dispatch bounds what was read and not yet returned, as in joblib.
                wanted = size * (self.max_in_flight - len(self.in_flight))
            # Otherwise read a few batches ahead, so the end of the input is seen in time to cut
            # the last batches small enough for every worker to get a share.
            self._fill_buffer(wanted)
            if not self.buffer:
                return
            if self.exhausted:
                size = self.sizer.capped(len(self.buffer))
            size = min(size, len(self.buffer))
            tasks = [self.buffer.popleft() for _ in range(size)]
            batch = Batch(self.call_id, self.position, tasks)
            self.position += size
            self.parallel.n_dispatched_tasks += size
            self.parallel.n_dispatched_batches += 1
            if not self.backend.reports_task_start:
                batch.mark_started()
            self.in_flight[batch.key] = batch
            try:
                self.backend.submit(batch, self.on_done)
            except BaseException:
                del self.in_flight[batch.key]
                raise

    def _next_completed(self) -> tuple[Batch, BatchOutcome]:
        timeout_s = self.options.timeout_s
        if timeout_s is None:
            return self.completed.get()
        while True:
            starts = [b.task_started_at for b in self.in_flight.values() if b.task_started_at]
            wait_s = timeout_s if not starts else min(starts) + timeout_s - time.monotonic()
            try:
                return self.completed.get(timeout=max(wait_s, 0.0))
            except queue.Empty:
                pass
            now = time.monotonic()
            for batch in list(self.in_flight.values()):
                started = batch.task_started_at
                if started is not None and now - started >= timeout_s:
                    return batch, self._timed_out(batch, started)

    def _timed_out(self, batch: Batch, started: float) -> BatchOutcome:
        timeout_s = self.options.timeout_s or 0.0
        error = TaskTimeoutError(timeout_s, batch.describe(batch.running_offset))
        self.backend.abort([batch])
        return BatchOutcome([], error, time.monotonic() - started)

    def outputs(self) -> Iterator[Any]:
        ordered = self.settings.return_as != "generator_unordered"
        isolate = self.options.crash_policy == "isolate"
        waiting: dict[int, list[Any]] = {}
        next_index = 0
        while self.in_flight:
            batch, outcome = self._next_completed()
            if batch is CANCELLED:
                raise RuntimeError(
                    "this Parallel call was cancelled: its `with Parallel(...)` block ended "
                    "while another thread was reading its results"
                )
            if self.in_flight.pop(batch.key, None) is None:
                continue  # a late answer for a batch already given up on
            outcome.resolve()
            values = outcome.values
            error = outcome.error
            if error is not None:
                stoppable = isinstance(error, WorkerCrashedError) or (
                    isinstance(error, TaskTimeoutError) and self.backend.can_stop_running_tasks
                )
                if not (isolate and stoppable):
                    raise error
                values = [*values, error]
            elif len(values) != len(batch):
                raise RuntimeError(
                    f"backend {self.backend.name!r} answered {batch.describe(0)} with "
                    f"{len(values)} results for a batch of {len(batch)} tasks, and no error"
                )
            else:
                self.sizer.record(len(values), outcome.duration_s)
            self.parallel._batch_done(len(values), outcome.worker)
            self.dispatch()
            if not ordered:
                yield from values
                continue
            waiting[batch.first_index] = values
            while next_index in waiting:
                ready = waiting.pop(next_index)
                next_index += len(ready)
                yield from ready
        self.parallel._end_progress()

    def cancel_from_another_thread(self) -> None:
        """Wake the thread reading this call's results: it raises, and aborts the call."""
        self.completed.put((CANCELLED, BatchOutcome()))

    def abort(self) -> None:
        if self.in_flight:
            self.backend.abort(list(self.in_flight.values()))
            self.in_flight.clear()
