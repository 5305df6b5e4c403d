"""``Parallel``: joblib's call interface, driving any backend through the batch contract."""

from __future__ import annotations

import functools
import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, ParamSpec

from .backends.base import (
    Batch,
    BatchOutcome,
    CallOptions,
    ParallelBackendBase,
    Task,
    describe_task,
)
from .batching import BatchSizer
from .config import (
    UNSET,
    _Unset,
    check_hints,
    choose_backend,
    current_config,
    parse_pre_dispatch,
    resolve_n_jobs,
)
from .errors import TaskTimeoutError, WorkerCrashedError
from .progress import Progress

ReturnAs = Literal["list", "generator", "generator_unordered"]
RETURN_MODES = ("list", "generator", "generator_unordered")
CRASH_POLICIES = ("abort", "isolate")

P = ParamSpec("P")

_call_ids = itertools.count(1)
_PRIMED = object()


@dataclass(frozen=True)
class _Settings:
    return_as: str
    pre_dispatch: int | str
    batch_size: int | str
    options: CallOptions


def delayed(function: Callable[P, Any]) -> Callable[P, Task]:
    """Capture a call without making it: ``delayed(f)(x, y=1)`` is ``(f, (x,), {"y": 1})``."""

    @functools.wraps(function)
    def capture(*args: P.args, **kwargs: P.kwargs) -> Task:
        return function, args, kwargs

    return capture


def _pick(value: Any, fallback: Any) -> Any:
    return fallback if isinstance(value, _Unset) else value


def _check_task(task: object, position: int) -> Task:
    if type(task) is tuple and len(task) == 3 and callable(task[0]):
        return task
    raise TypeError(
        f"Parallel expects calls built with delayed(function)(*args, **kwargs); "
        f"item {position} of the input is {task!r}"
    )


class Parallel:
    """Run ``delayed`` calls in parallel, like ``joblib.Parallel``.

    ``Parallel(n_jobs=2)(delayed(f)(x) for x in xs)`` returns ``[f(x) for x in xs]``, computed
    by two workers. Arguments follow joblib; where a value is not given, the enclosing
    ``parallel_config`` decides, then joblib's default.

    ``crash_policy`` goes beyond joblib. ``'abort'`` (the default) fails the whole call when a
    worker process dies, as joblib does. With ``'isolate'``, a task whose worker dies (or that
    exceeds ``timeout``, on backends that can stop a running task) fails alone: its result is
    the ``WorkerCrashedError`` / ``TaskTimeoutError`` instance, returned instead of raised, and
    the other tasks go on in a replacement worker. Exceptions raised by tasks are still raised.
    """

    def __init__(
        self,
        n_jobs: int | _Unset | None = UNSET,
        backend: str | ParallelBackendBase | _Unset | None = UNSET,
        return_as: ReturnAs = "list",
        verbose: int | _Unset = UNSET,
        timeout: float | None = None,
        pre_dispatch: int | str = "2 * n_jobs",
        batch_size: int | str = "auto",
        temp_folder: str | _Unset | None = UNSET,
        max_nbytes: int | str | _Unset | None = UNSET,
        mmap_mode: str | _Unset | None = UNSET,
        prefer: str | _Unset | None = UNSET,
        require: str | _Unset | None = UNSET,
        *,
        crash_policy: str = "abort",
    ) -> None:
        state = current_config()
        prefer_value = _pick(prefer, state.prefer)
        require_value = _pick(require, state.require)
        check_hints(prefer_value, require_value, source="Parallel")
        if return_as not in RETURN_MODES:
            raise ValueError(f"return_as={return_as!r} is not one of {RETURN_MODES}")
        if crash_policy not in CRASH_POLICIES:
            raise ValueError(f"crash_policy={crash_policy!r} is not one of {CRASH_POLICIES}")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
        ):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        verbose_value = _pick(verbose, state.verbose)
        if not isinstance(verbose_value, int):  # True counts as 1, as in joblib
            raise TypeError(f"verbose must be an int, got {verbose_value!r}")
        verbose_value = int(verbose_value)
        backend_value = _pick(backend, None)
        self._backend = choose_backend(backend_value, prefer_value, require_value)
        if (
            crash_policy == "isolate"
            and self._backend.uses_processes
            and not self._backend.isolates_crashes
        ):
            raise ValueError(
                f"crash_policy='isolate' needs a backend that knows which task a dead worker "
                f"was running; backend {self._backend.name!r} does not (use 'loky')"
            )
        self.n_jobs = self._backend.effective_n_jobs(
            resolve_n_jobs(_pick(n_jobs, None), backend=self._backend)
        )
        BatchSizer(batch_size, self.n_jobs)  # validates batch_size
        parse_pre_dispatch(pre_dispatch, self.n_jobs)  # validates pre_dispatch
        self._settings = _Settings(
            return_as=return_as,
            pre_dispatch=pre_dispatch,
            batch_size=batch_size,
            options=CallOptions(
                timeout_s=None if timeout is None else float(timeout),
                crash_policy=crash_policy,
                temp_folder=_pick(temp_folder, state.temp_folder),
                max_nbytes=_pick(max_nbytes, state.max_nbytes),
                mmap_mode=_pick(mmap_mode, state.mmap_mode),
                inner_max_num_threads=state.inner_max_num_threads,
                verbose=verbose_value,
            ),
        )
        self.verbose = verbose_value
        self.timeout = timeout
        self.return_as = return_as
        self._managed = False
        self._running = False
        self._lock = threading.Lock()

    @property
    def backend(self) -> ParallelBackendBase:
        return self._backend

    @property
    def _sequential(self) -> bool:
        return self.n_jobs == 1

    def __enter__(self) -> Parallel:
        if not self._sequential:
            self.n_jobs = self._backend.start(self.n_jobs, self._settings.options)
        self._managed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._managed = False
        if not self._sequential:
            self._backend.stop()

    def __repr__(self) -> str:
        return f"Parallel(n_jobs={self.n_jobs}, backend={self._backend.name!r})"

    def __call__(self, iterable: Iterable[Task]) -> Any:
        with self._lock:
            if self._running:
                raise RuntimeError(
                    "this Parallel instance is already running a call; "
                    "use one instance per concurrent call"
                )
            self._running = True
        try:
            if self._sequential:
                outputs = self._run_sequential(iterable)
            else:
                outputs = self._run_parallel(iterable)
                next(outputs)  # dispatch the first batches now, as joblib does
        except BaseException:
            self._running = False
            raise
        if self.return_as == "list":
            return list(outputs)
        return outputs

    def _run_sequential(self, iterable: Iterable[Task]) -> Iterator[Any]:
        progress = Progress(self.verbose, 1, "sequential")
        timeout_s = self._settings.options.timeout_s
        try:
            for position, task in enumerate(iterable):
                function, args, kwargs = _check_task(task, position)
                started = time.monotonic()
                value = function(*args, **kwargs)
                if timeout_s is not None and time.monotonic() - started > timeout_s:
                    # A plain loop cannot interrupt a task; it reports the overrun afterwards.
                    raise TaskTimeoutError(timeout_s, describe_task(position, function))
                progress.batch_done(1, None)
                yield value
            progress.finished()
        finally:
            self._running = False

    def _run_parallel(self, iterable: Iterable[Task]) -> Iterator[Any]:
        run = _ParallelRun(self, iter(iterable))
        try:
            if not self._managed:
                self.n_jobs = self._backend.start(self.n_jobs, self._settings.options)
                run.n_jobs = self.n_jobs
            run.dispatch()
            yield _PRIMED
            yield from run.outputs()
        except BaseException:
            run.abort()
            raise
        finally:
            self._running = False
            if not self._managed:
                self._backend.stop()


class _ParallelRun:
    """The state of one parallel call: what is buffered, in flight, done and not yet yielded."""

    def __init__(self, parallel: Parallel, tasks: Iterator[Task]) -> None:
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
        self.on_done: Callable[[Batch, BatchOutcome], None] = self._on_done
        # One task per batch where a task must be stopped or blamed alone: a process worker is
        # killed as a whole, and a dead one takes its whole batch with it.
        self.one_per_batch = self.backend.uses_processes and (
            self.options.timeout_s is not None or self.options.crash_policy == "isolate"
        )
        self.sizer = BatchSizer(1 if self.one_per_batch else settings.batch_size, self.n_jobs)
        limit = parse_pre_dispatch(settings.pre_dispatch, self.n_jobs)
        if self.options.timeout_s is not None and not self.backend.reports_task_start:
            # The backend cannot tell when a task starts, so keep no more in flight than there
            # are workers: then a batch starts when it is dispatched.
            limit = self.n_jobs if limit is None else min(limit, self.n_jobs)
        self.max_in_flight = limit
        self.progress = Progress(settings.options.verbose, self.n_jobs, self.backend.name)
        self.total: int | None = None

    def _on_done(self, batch: Batch, outcome: BatchOutcome) -> None:
        self.completed.put((batch, outcome))

    def _fill_buffer(self, wanted: int) -> None:
        while not self.exhausted and len(self.buffer) < wanted:
            chunk = list(itertools.islice(self.tasks, wanted - len(self.buffer)))
            if len(chunk) < wanted - len(self.buffer):
                self.exhausted = True
                self.total = self.position + len(self.buffer) + len(chunk)
            for task in chunk:
                self.buffer.append(_check_task(task, self.position + len(self.buffer)))

    def dispatch(self) -> None:
        """Send batches until the pre-dispatch limit is reached or the input is used up."""
        while self.max_in_flight is None or len(self.in_flight) < self.max_in_flight:
            size = self.sizer.size
            # Read a few batches ahead, so the end of the input is seen in time to cut the last
            # batches small enough for every worker to get a share.
            self._fill_buffer(size * self.n_jobs * 2)
            if not self.buffer:
                return
            if self.exhausted:
                size = self.sizer.capped(len(self.buffer))
            size = min(size, len(self.buffer))
            tasks = [self.buffer.popleft() for _ in range(size)]
            batch = Batch(self.call_id, self.position, tasks)
            self.position += size
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
            self.progress.batch_done(len(values), self.total, outcome.worker)
            self.dispatch()
            if not ordered:
                yield from values
                continue
            waiting[batch.first_index] = values
            while next_index in waiting:
                ready = waiting.pop(next_index)
                next_index += len(ready)
                yield from ready
        self.progress.finished()

    def abort(self) -> None:
        if self.in_flight:
            self.backend.abort(list(self.in_flight.values()))
            self.in_flight.clear()
