"""The dask backend: batches run as tasks on a dask.distributed cluster, as joblib's does.

Which cluster: the ``client`` given, else one connected to ``scheduler_address`` (or to the
``DASK_SCHEDULER_ADDRESS`` environment variable, dask's own convention), else the current
``distributed.Client`` (``get_client()``). ``distributed`` is an optional dependency
(``pip install pytest-parproc[dask]``); this module is imported only when the backend is asked
for.

What a batch does on the cluster comes back through dask's own channels: the result through
its future, and a "started" event the batch sends before it runs (which worker, which pid;
timeouts count from it). A batch whose worker dies while it runs fails with
``WorkerCrashedError`` naming that worker's address (see ``Listener``).
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import os
import pickle
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from ..errors import UnpicklableTaskError
from .base import Batch, CallOptions, DoneCallback, ParallelBackendBase
from .dask_events import Listener, Running
from .dask_tasks import MISSING, RUN_ONCE_ROOT, Pinned, kill_descendants, run_on_dask_worker


def _optional_distributed() -> Any:
    try:
        return importlib.import_module("distributed")
    except ImportError:  # the optional extra is missing
        return None


distributed: Any = _optional_distributed()

#: The environment variable dask itself reads for the scheduler's address.
ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"
#: What ``client.submit`` may be given through ``parallel_config("dask", ...)``, as in joblib.
SUBMIT_KEYWORDS = frozenset(
    {"workers", "allow_other_workers", "resources", "retries", "priority", "fifo_timeout"}
)

_clients: dict[str, Any] = {}  # address -> the Client this process opened to it
_lock = threading.Lock()


def require_distributed() -> None:
    if distributed is None:
        raise ImportError(MISSING)


def connect(address: str, source: str, timeout_s: float | None = None) -> Any:
    """A client of the scheduler at ``address`` (one per address, kept for later calls); a
    clear error names the address and where it came from when it cannot be reached."""
    require_distributed()
    with _lock:
        client = _clients.get(address)
        if client is not None and client.status == "running":
            return client
    try:
        limit = {} if timeout_s is None else {"timeout": timeout_s}  # else dask's own setting
        client = distributed.Client(address, set_as_default=False, **limit)
    except (OSError, TimeoutError, asyncio.TimeoutError, ValueError) as error:
        raise ConnectionError(
            f"the dask backend could not reach the dask scheduler at {address!r} (from "
            f"{source}): {type(error).__name__}: {error}"
        ) from error
    with _lock:
        _clients[address] = client
    return client


def _close_clients() -> None:
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        try:
            client.close(timeout=5)
        except Exception:
            pass


atexit.register(_close_clients)


class DaskBackend(ParallelBackendBase):
    """Batches as tasks of a dask.distributed cluster (see the module's docstring).

    Parameters: ``client`` (a ``distributed.Client``), or ``scheduler_address`` (else the
    ``DASK_SCHEDULER_ADDRESS`` environment variable, else the current client); ``scatter``, a
    list of objects sent to every worker once, which then travel by reference wherever a task
    names them as an argument; ``wait_for_workers_timeout`` seconds to wait for a first worker
    (0: do not wait); ``connect_timeout`` seconds to reach a scheduler by its address (dask's
    ``distributed.comm.timeouts.connect`` when not given); ``run_once``: a batch that dask
    starts again after its first worker died (the scheduler's ``allowed-failures``) runs none
    of its tasks there, instead of being stopped by restarting that worker (two more calls to
    the scheduler per batch); and what ``client.submit`` takes (``workers``, ``resources``,
    ...).
    ``n_jobs=-1`` (the default here, as in joblib) means all the cluster's threads.
    """

    name = "dask"
    uses_processes = True
    can_stop_running_tasks = True
    reports_task_start = True
    isolates_crashes = True
    default_n_jobs = -1

    def __init__(
        self,
        nesting_level: int | None = None,
        *,
        client: Any = None,
        scheduler_address: str | None = None,
        scatter: Sequence[Any] | None = None,
        wait_for_workers_timeout: float = 10.0,
        connect_timeout: float | None = None,
        run_once: bool = False,
        **submit_kwargs: Any,
    ) -> None:
        unknown = set(submit_kwargs) - SUBMIT_KEYWORDS
        super().__init__(nesting_level, **{name: submit_kwargs[name] for name in unknown})
        require_distributed()
        if scatter is not None and not isinstance(scatter, (list, tuple)):
            raise TypeError(f"scatter must be a list or a tuple, got {type(scatter).__name__}")
        if (
            isinstance(wait_for_workers_timeout, bool)
            or not isinstance(wait_for_workers_timeout, (int, float))
            or wait_for_workers_timeout < 0
        ):
            raise ValueError(
                "wait_for_workers_timeout must be a number of seconds (0: do not wait), "
                f"got {wait_for_workers_timeout!r}"
            )
        if connect_timeout is not None and (
            isinstance(connect_timeout, bool)
            or not isinstance(connect_timeout, (int, float))
            or connect_timeout <= 0
        ):
            raise ValueError(
                f"connect_timeout must be a positive number of seconds, got {connect_timeout!r}"
            )
        if client is None:
            client = _find_client(scheduler_address, connect_timeout)
        self.client = client
        self.wait_for_workers_timeout = float(wait_for_workers_timeout)
        self.submit_kwargs = submit_kwargs
        self.run_once = bool(run_once)
        self._scattered: list[Any] = list(scatter or [])  # kept alive: their ids are the keys
        self._futures_by_id: dict[int, Any] = {}
        if self._scattered:
            futures = self.client.scatter(self._scattered, broadcast=True, hash=False)
            self._futures_by_id = {id(x): f for x, f in zip(self._scattered, futures, strict=True)}
        self._prefix = uuid.uuid4().hex[:12]
        self._listener: Listener | None = None

    def available_cpus(self) -> int | None:
        return self._threads()

    def _threads(self) -> int:
        """The worker threads this backend may use (those of ``workers=`` where given),
        waiting up to ``wait_for_workers_timeout`` for a first worker."""
        threads = self._count_threads()
        if threads == 0 and self.wait_for_workers_timeout > 0:
            try:
                self.client.wait_for_workers(1, timeout=self.wait_for_workers_timeout)
            except (TimeoutError, OSError, asyncio.TimeoutError) as error:
                # asyncio's TimeoutError, which dask raises, is not the builtin before 3.11.
                raise TimeoutError(
                    f"the dask backend found no worker on the cluster of {self.client.scheduler}"
                    f" after {self.wait_for_workers_timeout:g} s; start workers, or wait longer "
                    "with parallel_config(backend='dask', wait_for_workers_timeout=SECONDS)"
                ) from error
            threads = self._count_threads()
        return max(1, threads)

    def _count_threads(self) -> int:
        nthreads: dict[str, int] = self.client.nthreads()
        allowed = self.submit_kwargs.get("workers")
        if allowed:
            chosen = {allowed} if isinstance(allowed, str) else set(allowed)
            nthreads = {a: n for a, n in nthreads.items() if a in chosen}
        return sum(nthreads.values())

    def start(self, n_jobs: int, options: CallOptions) -> int:
        self._listener = Listener.of(self.client)
        self.n_jobs = n_jobs
        return n_jobs

    def submit(self, batch: Batch, on_done: DoneCallback, retries: int = 0) -> None:
        assert self._listener is not None, "start() was not called"
        payload, tasks = self._encode(batch)
        batch_id = f"{self._prefix}-{batch.key}"
        function = batch.tasks[0][0]
        name = getattr(function, "__name__", type(function).__name__)
        key = f"parproc-{name}-{batch_id}" + (f"-again{retries}" if retries else "")
        running = Running(batch, on_done, key, retries=retries, run_once=self.run_once)
        once = [RUN_ONCE_ROOT, self._prefix, f"{batch.key}-{retries}"] if self.run_once else None
        if not isinstance(function, Pinned):  # (its worker is gone: it could run nowhere)
            running.again = lambda: self.submit(batch, on_done, retries + 1)
        listener = self._listener
        with listener.lock:
            listener.running[batch_id] = running
        where = dict(self.submit_kwargs)
        if len(batch) == 1 and isinstance(function, Pinned):
            where.update(workers=[function.worker], allow_other_workers=False)
            running.pinned = str(function.worker)
        try:
            future = self.client.submit(
                run_on_dask_worker, batch_id, payload, tasks, once, key=key, pure=False, **where
            )
        except BaseException:
            with listener.lock:
                listener.running.pop(batch_id, None)
            raise
        running.future = future
        future.add_done_callback(lambda done: listener.finished(batch_id, done))
        if running.pinned:
            listener.watch_pinned()

    def _encode(self, batch: Batch) -> tuple[bytes | None, list[Any] | None]:
        """The batch pickled (a clear error names an argument that cannot be), or, where an
        argument is one of the ``scatter`` objects, the tasks with its future in its place."""
        if self._futures_by_id:
            swap = self._futures_by_id
            uses = any(
                id(value) in swap
                for _, args, kwargs in batch.tasks
                for value in (*args, *kwargs.values())
            )
            if uses:
                # Lists, not tuples: dask reads a tuple that starts with a callable as a task
                # of its own graph, and would call it.
                return None, [
                    [
                        function,
                        [swap.get(id(value), value) for value in args],
                        {key: swap.get(id(value), value) for key, value in kwargs.items()},
                    ]
                    for function, args, kwargs in batch.tasks
                ]
        import cloudpickle

        try:
            return bytes(cloudpickle.dumps(batch.tasks)), None
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as error:
            raise UnpicklableTaskError(
                f"{batch.describe(0)} (or another task of its batch) could not be serialized to "
                f"be sent to a dask worker: {type(error).__name__}: {error}"
            ) from error

    def abort(self, batches: Sequence[Batch]) -> None:
        """Cancel the batches' futures; a batch still running is stopped by restarting its
        worker (dask cannot interrupt a running task; the worker needs a nanny), what its task
        started killed first. Returns once those workers are back, so that no later batch lands
        on a worker about to restart."""
        listener = self._listener
        if listener is None:
            return
        keys = {f"{self._prefix}-{batch.key}" for batch in batches}
        with listener.lock:
            dropped = [listener.running.pop(key) for key in keys if key in listener.running]
        futures = [running.future for running in dropped if running.future is not None]
        busy = sorted(
            {
                running.worker
                for running in dropped
                if running.worker
                and running.future is not None
                and running.future.status == "pending"
            }
        )
        try:
            if futures:
                self.client.cancel(futures, force=True)
            if busy:
                self.client.run(kill_descendants, workers=busy)
                self.client.restart_workers(busy, raise_for_error=False)
        except Exception:
            pass  # no nanny (the worker cannot be restarted), or the cluster is closing

    def stop(self) -> None:
        if self.run_once and self._listener is not None:
            try:  # (the call's marks, as one entry: the scheduler's metadata has no delete)
                self.client.set_metadata([RUN_ONCE_ROOT, self._prefix], None)
            except Exception:
                pass  # the cluster is gone

    def effective_n_jobs(self, n_jobs: int) -> int:
        # Not capped by the threads there are now: a worker restarting (after a timeout) or
        # still starting would make a call sequential; tasks beyond the threads only queue.
        return max(1, n_jobs)


def _find_client(address: str | None, timeout_s: float | None) -> Any:
    if address:
        return connect(address, "scheduler_address", timeout_s)
    from_environment = os.environ.get(ADDRESS_VARIABLE)
    if from_environment:
        source = f"the environment variable {ADDRESS_VARIABLE}"
        return connect(from_environment, source, timeout_s)
    try:
        return distributed.get_client()
    except ValueError as error:
        raise ValueError(
            "the dask backend needs a dask cluster: create a distributed.Client first "
            "(Client() starts a local cluster; Client('tcp://host:8786') connects to one), or "
            f"give parallel_config('dask', scheduler_address=...) or ${ADDRESS_VARIABLE}"
        ) from error
