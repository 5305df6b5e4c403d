"""The loky backend: batches run in the shared, reusable pool of worker processes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._pool.inherited import THREAD_LIMIT_VARIABLES, authkey, caller_thread_limits
from .._pool.pool import PoolSettings, ProcessPool
from .._pool.reusable import get_reusable_pool
from ..errors import UnpicklableTaskError
from ..memmap import ArrayMemmapper, parse_nbytes
from ..nesting import nested_process_jobs
from .base import Batch, CallOptions, DoneCallback, ParallelBackendBase


def encode_batch(memmapper: ArrayMemmapper, batch: Batch) -> bytes:
    """Serialize a batch with cloudpickle (large arrays become memmaps); name the culprit."""
    try:
        return memmapper.dumps(batch.tasks)
    except OSError:
        raise  # writing a memmapped array: not the task's fault
    except Exception as error:  # whatever a __reduce__ raises, as joblib takes it
        raise UnpicklableTaskError(
            f"Could not pickle the task to send it to a worker process: {batch.describe(0)} "
            f"(or another task of its batch): {type(error).__name__}: {error}"
        ) from error


START_METHODS = ("exec", "fork")


class LokyBackend(ParallelBackendBase):
    """Process workers in the style of joblib's loky: started by fork+exec, kept warm between
    calls, callables shipped with cloudpickle, dead workers detected and named.

    Parameters (give them to ``parallel_config(backend="loky", ...)`` or to the constructor):
    ``idle_worker_timeout`` seconds before an idle worker exits; ``worker_start_timeout``
    seconds a new worker may take to get ready (its initializer included) before the call
    fails with ``WorkerStartError``; ``max_tasks_per_worker`` and
    ``max_worker_memory`` (bytes, or '500M') recycle a worker between batches once it has run
    that many tasks or grown that large; ``initializer(*initargs)`` runs once in each worker,
    ``finalizer()`` when it stops normally; ``env`` adds environment variables for workers.
    ``start_method="fork"`` starts the pool's first workers with a plain fork when this process
    has a single thread (they inherit what it imported and built, and start in milliseconds);
    workers started later (replacements, a larger pool) and any started while other threads
    run use fork+exec, the default ``"exec"``.
    """

    name = "loky"
    uses_processes = True
    can_stop_running_tasks = True
    reports_task_start = True
    isolates_crashes = True
    supports_inner_max_num_threads = True

    def __init__(
        self,
        nesting_level: int | None = None,
        *,
        idle_worker_timeout: float = 300.0,
        worker_start_timeout: float = 60.0,
        max_tasks_per_worker: int | None = None,
        max_worker_memory: int | str | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        finalizer: Callable[[], Any] | None = None,
        env: Mapping[str, str] | None = None,
        start_method: str = "exec",
        **backend_params: Any,
    ) -> None:
        super().__init__(nesting_level, **backend_params)
        for name, value in (
            ("idle_worker_timeout", idle_worker_timeout),
            ("worker_start_timeout", worker_start_timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if max_tasks_per_worker is not None and max_tasks_per_worker < 1:
            raise ValueError(f"max_tasks_per_worker must be at least 1, got {max_tasks_per_worker}")
        if start_method not in START_METHODS:
            raise ValueError(f"start_method must be one of {START_METHODS}, got {start_method!r}")
        for name, function in (("initializer", initializer), ("finalizer", finalizer)):
            if function is not None and not callable(function):
                raise TypeError(f"{name} must be callable, got {function!r}")
        self._settings = PoolSettings(
            initializer=initializer,
            initargs=tuple(initargs),
            finalizer=finalizer,
            idle_timeout_s=float(idle_worker_timeout),
            start_timeout_s=float(worker_start_timeout),
            max_tasks_per_worker=max_tasks_per_worker,
            max_worker_memory=parse_nbytes(max_worker_memory),
            environment=tuple(sorted((env or {}).items())),
            start_method=start_method,
        )
        self._pool: ProcessPool | None = None
        self._call_settings = self._settings
        self._memmapper: ArrayMemmapper | None = None

    def effective_n_jobs(self, n_jobs: int) -> int:
        return nested_process_jobs(self.name, max(1, n_jobs))

    def start(self, n_jobs: int, options: CallOptions) -> int:
        settings = dataclasses.replace(
            self._settings, parent_limits=caller_thread_limits(), authkey=authkey()
        )
        if options.inner_max_num_threads is not None:
            limits = {name: str(options.inner_max_num_threads) for name in THREAD_LIMIT_VARIABLES}
            environment = {**limits, **dict(settings.environment)}
            settings = dataclasses.replace(settings, environment=tuple(sorted(environment.items())))
        self._call_settings = settings
        self._pool = get_reusable_pool(n_jobs, settings)
        self._memmapper = ArrayMemmapper(options.temp_folder, options.max_nbytes, options.mmap_mode)
        self.n_jobs = n_jobs
        return n_jobs

    def submit(self, batch: Batch, on_done: DoneCallback) -> None:
        assert self._pool is not None and self._memmapper is not None, "start() was not called"
        if not self._pool.alive:
            # The shared pool was replaced since start() (another call with other settings, or
            # an explicit shutdown): take the current one, as a new call would.
            self._pool = get_reusable_pool(self.n_jobs, self._call_settings)
        self._pool.submit(batch, encode_batch(self._memmapper, batch), on_done)

    def abort(self, batches: Sequence[Batch]) -> None:
        if self._pool is not None:
            self._pool.cancel(list(batches))

    def stop(self) -> None:
        if self._memmapper is not None:
            self._memmapper.cleanup()
            self._memmapper = None
