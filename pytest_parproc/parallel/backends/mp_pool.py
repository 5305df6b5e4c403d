"""The multiprocessing backend: batches run in a ``multiprocessing.Pool`` for each call."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any

from .._pool.process_tree import kill_process_tree
from ..errors import WorkerCrashedError
from ..memmap import ArrayMemmapper
from ..resources import idle_threads_alive, threads_blocking_fork
from ..tasks import decode_outcome, run_batch_payload
from .base import Batch, BatchOutcome, CallOptions, DoneCallback, ParallelBackendBase
from .loky import encode_batch


def _initialize_worker(sys_path: list[str], initializer: bytes | None) -> None:
    import pickle
    import sys

    sys.path[:] = sys_path
    from ..nesting import set_nested_fallback

    set_nested_fallback("threading", 1, "multiprocessing")
    if initializer is not None:
        function, args = pickle.loads(initializer)
        function(*args)


def _run_in_pool(payload: bytes) -> bytes:
    import sys

    result = run_batch_payload(payload)[0]
    # What the tasks printed reaches the terminal batch by batch: the pool is terminated at
    # the end of a call, and a terminated worker never flushes its block-buffered stdout.
    sys.stdout.flush()
    sys.stderr.flush()
    return result


def _pool_processes(pool: multiprocessing.pool.Pool) -> list[Any]:
    # multiprocessing.Pool has no public list of its processes; ``_pool`` has held them since
    # Python 2.6. It is read in this one place, to notice a worker that dies mid-task (the Pool
    # would replace it and wait forever for the lost result).
    return list(getattr(pool, "_pool", []))


class _RecordingPool(multiprocessing.pool.Pool):
    """A Pool that remembers every worker process it starts, replacements included, so a
    worker that dies right after it was started is still seen."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.started: list[Any] = []
        super().__init__(*args, **kwargs)

    # ``Pool.Process(ctx, *args, **kwds)`` is the factory the pool calls for every worker it
    # starts (a static method of Pool since Python 3.8); a bound method works the same way.
    def Process(self, ctx: Any, *args: Any, **kwds: Any) -> Any:  # type: ignore[override]
        process = ctx.Process(*args, **kwds)
        self.started.append(process)
        return process


def _exit_code_once_reaped(
    pool: multiprocessing.pool.Pool, process: Any, stopping: threading.Event
) -> int | None:
    """The exit code of a dead pool worker, read without racing the pool for it.

    The pool's own thread reaps dead workers (``waitpid``, or the fork server's status pipe)
    and drops them from its list. Reaping here too would race it: the loser of ``waitpid``
    sees no exit code, and the loser of the status pipe reads 255. So wait until the pool has
    dropped the worker, then read the code it stored.
    """
    deadline = time.monotonic() + 5.0
    while any(p is process for p in _pool_processes(pool)) and time.monotonic() < deadline:
        if stopping.wait(0.01):
            return None
    code: int | None = process.exitcode
    return code


#: How long ``Pool.terminate()`` may take before the pool is given up on.
TERMINATE_WAIT_S = 10.0


def _terminate_within(pool: multiprocessing.pool.Pool, seconds: float) -> bool:
    """``terminate()`` and ``join()``, unless they take longer than ``seconds``."""

    def close() -> None:
        pool.terminate()
        pool.join()

    closer = threading.Thread(target=close, name="parproc-pool-terminate", daemon=True)
    closer.start()
    closer.join(seconds)
    return not closer.is_alive()


def _live_workers(pool: multiprocessing.pool.Pool) -> list[int]:
    processes = list(getattr(pool, "started", [])) or _pool_processes(pool)
    return [process.pid for process in processes if process.is_alive()]


def _descendants(pool: multiprocessing.pool.Pool) -> list[int]:
    import psutil

    pids = []
    for process in _pool_processes(pool):
        try:
            children = psutil.Process(process.pid).children(recursive=True)
        except psutil.Error:
            continue
        pids += [child.pid for child in children]
    return pids


def choose_start_method(requested: str | None, refills: bool = False) -> str:
    """``fork`` only while this process has a single thread (forking a threaded process can
    deadlock the child) and the pool will not fork again later from its own threads
    (``refills``: maxtasksperchild); otherwise ``forkserver``, or ``spawn`` where missing."""
    methods = multiprocessing.get_all_start_methods()
    if requested is not None:
        if requested not in methods:
            raise ValueError(f"start method {requested!r} is not one of {methods}")
        return requested
    busy, _ = threads_blocking_fork()  # (native threads: as multiprocessing itself, not seen)
    if "fork" in methods and not busy and not refills:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


class MultiprocessingBackend(ParallelBackendBase):
    """A ``multiprocessing.Pool`` started for each call (or each ``with Parallel`` block).

    Tasks and arguments travel with cloudpickle like in the loky backend. A worker that dies
    fails the whole call with ``WorkerCrashedError``: the pool cannot tell which task it was
    running, so ``crash_policy='isolate'`` needs the loky backend.
    """

    name = "multiprocessing"
    uses_processes = True
    can_stop_running_tasks = True

    def __init__(
        self,
        nesting_level: int | None = None,
        *,
        context: str | multiprocessing.context.BaseContext | None = None,
        maxtasksperchild: int | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        **backend_params: Any,
    ) -> None:
        super().__init__(nesting_level, **backend_params)
        if context is not None and not isinstance(context, str) and not hasattr(context, "Pool"):
            raise TypeError(
                f"backend 'multiprocessing': context must be a start method name or a "
                f"multiprocessing context, got {context!r}"
            )
        self._context = context
        self._maxtasksperchild = maxtasksperchild
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._pool: multiprocessing.pool.Pool | None = None
        self._memmapper: ArrayMemmapper | None = None
        self._in_flight: dict[int, tuple[Batch, DoneCallback]] = {}
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()

    def effective_n_jobs(self, n_jobs: int) -> int:
        from ..nesting import nested_process_jobs

        n_jobs = nested_process_jobs(self.name, max(1, n_jobs))
        if multiprocessing.current_process().daemon:
            return 1  # daemonic processes (Pool workers) may not have children
        return n_jobs

    def start(self, n_jobs: int, options: CallOptions) -> int:
        self.n_jobs = n_jobs
        self._memmapper = ArrayMemmapper(options.temp_folder, options.max_nbytes, options.mmap_mode)
        self._open_pool()
        return n_jobs

    def _open_pool(self) -> None:
        import sys

        import cloudpickle

        if self._context is None or isinstance(self._context, str):
            method = choose_start_method(self._context, self._maxtasksperchild is not None)
            context = multiprocessing.get_context(method)
        else:  # a context object, as joblib takes one (a start method, a preloading fork server)
            context = self._context
            method = context.get_start_method()
        if method == "forkserver":
            # Children of the fork server start with what it imported: with the engine among
            # its modules, a new pool's workers need not import it each time (this only takes
            # effect if the fork server has not started yet).
            context.set_forkserver_preload(["__main__", __name__])
        initializer = None
        if self._initializer is not None:
            initializer = cloudpickle.dumps((self._initializer, self._initargs))
        self._stopping = threading.Event()
        with warnings.catch_warnings():
            if idle_threads_alive():  # declared idle: Python 3.12's warning does not apply
                warnings.simplefilter("ignore", DeprecationWarning)
            self._pool = _RecordingPool(
                self.n_jobs,
                initializer=_initialize_worker,
                initargs=(list(sys.path), initializer),
                maxtasksperchild=self._maxtasksperchild,
                context=context,
            )
        self._watcher = threading.Thread(
            target=self._watch,
            # Taken now, before any task is sent, so no worker can die unseen.
            args=(self._pool, self._stopping),
            daemon=True,
            name="parproc-mp-watch",
        )
        self._watcher.start()

    def submit(self, batch: Batch, on_done: DoneCallback) -> None:
        assert self._memmapper is not None, "start() was not called"
        if self._pool is None:
            self._open_pool()
        assert self._pool is not None
        payload = encode_batch(self._memmapper, batch)
        key = batch.key
        with self._lock:
            self._in_flight[key] = (batch, on_done)

        def done(result: bytes) -> None:
            with self._lock:
                entry = self._in_flight.pop(key, None)
            if entry is not None:
                entry[1](batch, BatchOutcome(payload=result, decoder=decode_outcome))

        def failed(error: BaseException) -> None:
            with self._lock:
                entry = self._in_flight.pop(key, None)
            if entry is not None:
                entry[1](batch, BatchOutcome(error=error))

        self._pool.apply_async(_run_in_pool, (payload,), callback=done, error_callback=failed)

    def _watch(self, pool: _RecordingPool, stopping: threading.Event) -> None:
        # Wait on the sentinels of every worker the pool ever started; new ones (the pool
        # replaces workers: maxtasksperchild, or after a death) join at the next wake-up, and
        # a sentinel stays ready once its process is dead, so a quick death is not missed.
        watched: dict[int, Any] = {}
        seen = 0
        while not stopping.is_set():
            for process in pool.started[seen:]:
                if process.pid is None:
                    break  # created but not started yet: look again at the next wake-up
                watched[id(process)] = process
                seen += 1
            ready = set(wait([p.sentinel for p in watched.values()], timeout=1.0))
            if stopping.is_set():
                return
            for key, process in list(watched.items()):
                if process.sentinel not in ready:
                    continue
                del watched[key]
                exitcode = _exit_code_once_reaped(pool, process, stopping)
                # Exit code 0 is a normal end only for a worker that maxtasksperchild retires;
                # otherwise a task called os._exit(0) or sys.exit in a thread, and the pool
                # would wait for its result forever.
                expected = exitcode == 0 and self._maxtasksperchild is not None
                if not expected and not stopping.is_set():
                    self._crashed(exitcode, process.pid)
                    return

    def _crashed(self, exitcode: int | None, pid: int) -> None:
        with self._lock:
            entries, self._in_flight = list(self._in_flight.values()), {}
        for batch, on_done in entries:
            error = WorkerCrashedError(
                exitcode=exitcode,
                pid=pid,
                task=f"one of the running tasks (from {batch.describe(0)})",
            )
            on_done(batch, BatchOutcome(error=error))

    def abort(self, batches: Sequence[Batch]) -> None:
        # A Pool cannot cancel one task: stop the whole pool; the next submit opens a new one.
        with self._lock:
            for batch in batches:
                self._in_flight.pop(batch.key, None)
        self._close_pool(kill=True)

    def _close_pool(self, kill: bool = False) -> None:
        self._stopping.set()
        pool, self._pool = self._pool, None
        if pool is not None:
            # terminate() stops the workers with SIGTERM but not what their tasks started.
            # The workers themselves must not get SIGKILL first: an idle one holds the task
            # queue's lock, and terminate() would then wait for that lock forever.
            descendants = _descendants(pool) if kill else []
            if not _terminate_within(pool, TERMINATE_WAIT_S):
                # A worker died holding a lock of the pool's queues (killed while it sent a
                # result, or took a task): the pool's own threads wait for it forever. Its
                # workers are killed and its threads left waiting (they are daemons).
                descendants += _live_workers(pool)
            for pid in descendants:
                kill_process_tree(pid)
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(2.0)

    def stop(self) -> None:
        self._close_pool()
        with self._lock:
            self._in_flight.clear()
        if self._memmapper is not None:
            self._memmapper.cleanup()
            self._memmapper = None


__all__ = ["MultiprocessingBackend", "choose_start_method"]
