"""``Parallel``: joblib's call interface, driving any backend through the batch contract."""

from __future__ import annotations

import functools
import inspect
import itertools
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Generator, Iterable
from types import TracebackType
from typing import Any, Literal, ParamSpec

from .backends.base import (
    CallOptions,
    ParallelBackendBase,
    Task,
)
from .batching import BatchSizer
from .call import ParallelRun, Settings, check_task
from .config import (
    UNSET,
    _Unset,
    check_hints,
    choose_backend,
    current_config,
    parse_pre_dispatch,
    resolve_n_jobs,
)
from .progress import Progress

ReturnAs = Literal["list", "generator", "generator_unordered"]
RETURN_MODES = ("list", "generator", "generator_unordered")
CRASH_POLICIES = ("abort", "isolate")

P = ParamSpec("P")

_PRIMED = object()


def delayed(function: Callable[P, Any]) -> Callable[P, Task]:
    """Capture a call without making it: ``delayed(f)(x, y=1)`` is ``(f, (x,), {"y": 1})``."""

    @functools.wraps(function)
    def capture(*args: P.args, **kwargs: P.kwargs) -> Task:
        return function, args, kwargs

    return capture


def _pick(value: Any, fallback: Any) -> Any:
    return fallback if isinstance(value, _Unset) else value


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

    Other keyword arguments are the backend's parameters (``initializer``, ``initargs``, ...),
    as in joblib; they join those of an enclosing ``parallel_config`` naming the backend.
    ``backend`` may also be a ``multiprocessing`` context (the multiprocessing backend with it).
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
        **backend_params: Any,
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
        choice = choose_backend(backend_value, prefer_value, require_value, backend_params)
        self._backend = choice.backend
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
            resolve_n_jobs(
                _pick(n_jobs, None), backend=self._backend, context=choice.context_n_jobs
            )
        )
        BatchSizer(batch_size, self.n_jobs)  # validates batch_size
        parse_pre_dispatch(pre_dispatch, self.n_jobs)  # validates pre_dispatch
        self._settings = Settings(
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
        #: joblib's counters, for a subclass's ``print_progress``: tasks sent to workers, tasks
        #: finished, and the call's number of tasks once the end of its input has been seen
        self.n_dispatched_tasks = 0
        self.n_dispatched_batches = 0
        self.n_completed_tasks = 0
        self.n_tasks: int | None = None
        self._progress: Progress | None = None
        self._generator: weakref.ref[Generator[Any, None, None]] | None = None
        self._last_batch: tuple[int, str] = (0, "")
        self._run: ParallelRun | None = None

    def _print(self, msg: str) -> None:
        """One progress line, as joblib writes it: stderr, or stdout from verbose 50."""
        if not self.verbose:
            return
        stream = sys.stderr if self.verbose < 50 else sys.stdout
        stream.write(f"[Parallel(n_jobs={self.n_jobs})]: {msg}\n")
        stream.flush()

    def print_progress(self) -> None:
        """Called after each finished batch (joblib's hook): a subclass may override it to show
        progress its own way (a progress bar), reading ``n_completed_tasks``,
        ``n_dispatched_tasks`` and ``n_tasks``. By default, the lines of ``verbose``."""
        if self._progress is None:
            return
        if self._progress.ended:
            self._progress.finished(self.n_completed_tasks)
        else:
            self._progress.update(
                self.n_completed_tasks,
                self.n_dispatched_tasks,
                self.n_dispatched_batches,
                self._run is not None and self._run.exhausted,  # (the input's end was seen)
                self._last_batch,
            )

    def _start_progress(
        self, n_jobs: int, known_total: int | None, pre_dispatch: int, sequential: bool = False
    ) -> Progress:
        """``pre_dispatch``: the call's, parsed (0 for 'all'); joblib's schedule uses it."""
        self.n_dispatched_tasks = self.n_completed_tasks = self.n_dispatched_batches = 0
        self.n_tasks = known_total
        backend_class = None if sequential else type(self._backend).__name__
        self._progress = Progress(
            self.verbose, n_jobs, backend_class, self._print, known_total, pre_dispatch
        )
        return self._progress

    def _end_progress(self) -> None:
        """Every task is done: the hook's last call, with ``n_tasks`` known."""
        self.n_tasks = self.n_completed_tasks
        if self._progress is not None:
            self._progress.ended = True
        self.print_progress()

    def _batch_done(self, size: int, worker: str) -> None:
        self.n_completed_tasks += size
        self._last_batch = (size, worker)
        self.print_progress()

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
        generator = self._generator() if self._generator is not None else None
        self._generator = None
        try:
            if generator is not None and inspect.getgeneratorstate(generator) != "GEN_CLOSED":
                self._cancel(generator, raise_errors=exc is None)
        finally:
            self._managed = False
            self._running = False  # (a generator closed before it started ran no finally)
            if not self._sequential:
                self._backend.stop()

    def _cancel(self, generator: Generator[Any, None, None], raise_errors: bool) -> None:
        """A generator left unconsumed when its block ends: its tasks are cancelled (running
        ones stopped where the backend can), as joblib aborts them, so that the next call does
        not wait; it gives no more results, and a warning says so."""
        warnings.warn(
            "the generator of a Parallel call was not consumed to its end when its `with "
            "Parallel(...)` block ended: its remaining tasks were cancelled",
            UserWarning,
            stacklevel=3,
        )
        run = self._run
        try:
            generator.close()
        except ValueError:  # being read in another thread right now: wake that thread
            if run is not None:
                run.cancel_from_another_thread()
                run.done.wait(10.0)  # so that the backend is not stopped under it
        except Exception:
            if raise_errors:
                raise  # (not over the block's own exception)

    def __repr__(self) -> str:
        return f"Parallel(n_jobs={self.n_jobs}, backend={self._backend.name!r})"

    def __call__(self, iterable: Iterable[Task]) -> Any:
        with self._lock:
            if self._running:
                raise RuntimeError(
                    "This Parallel instance is already running a call: use one instance per "
                    "concurrent call, and consume a generator's results before the next call"
                )
            self._running = True
        try:
            if self._sequential:
                if self.timeout is not None:
                    # joblib's warning, word for word: a plain loop cannot stop a task
                    warnings.warn(
                        f"The backend class 'SequentialBackend' does not support timeout. "
                        f"You have set 'timeout={self.timeout}' in Parallel but the 'timeout' "
                        f"parameter will not be used.",
                        UserWarning,
                        stacklevel=2,
                    )
                outputs = self._run_sequential(iterable)
            else:
                outputs = self._run_parallel(iterable)
                next(outputs)  # dispatch the first batches now, as joblib does
        except BaseException:
            self._running = False
            raise
        if self.return_as == "list":
            return list(outputs)
        self._generator = weakref.ref(outputs)
        return outputs

    def _run_sequential(self, iterable: Iterable[Task]) -> Generator[Any, None, None]:
        # (the sequential schedule never uses pre_dispatch: the input's end is not looked for)
        self._start_progress(1, _length(iterable), 0, sequential=True)
        batch_size = self._settings.batch_size
        # joblib reads a fixed batch's tasks before it runs them, in the caller too
        size = batch_size if isinstance(batch_size, int) else 1
        tasks = iter(iterable)
        position = 0
        try:
            while batch := list(itertools.islice(tasks, size)):
                batch = [check_task(task, position + offset) for offset, task in enumerate(batch)]
                self.n_dispatched_tasks += len(batch)
                self.n_dispatched_batches += 1
                for function, args, kwargs in batch:
                    value = function(*args, **kwargs)
                    self._batch_done(1, "")
                    yield value
                position += len(batch)
            self._end_progress()
        finally:
            self._running = False

    def _run_parallel(self, iterable: Iterable[Task]) -> Generator[Any, None, None]:
        run = self._run = ParallelRun(self, iter(iterable), _length(iterable))
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
            self._run = None
            run.done.set()
            if not self._managed:
                self._backend.stop()


def _length(iterable: Iterable[Task]) -> int | None:
    """The input's length where it has one (a list), as joblib reads it for its progress."""
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None
