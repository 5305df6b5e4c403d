"""What the dask backend hears from the cluster: the outcome of each batch's future, and the
"started" and "done" events its batches send (``dask_tasks``), turned into the engine's
outcomes, a dead worker's batch included."""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import WorkerCrashedError
from ..tasks import decode_outcome
from .base import Batch, BatchOutcome, DoneCallback
from .dask_tasks import STARTED_TOPIC, kill_descendants

_listeners: dict[int, Listener] = {}  # id(client) -> its listener
#: How often a batch that never started is submitted again after its worker died.
MAX_RETRIES = 3
_lock = threading.Lock()


@dataclass
class Running:
    """A batch on the cluster: who waits for it, its future, where it started."""

    batch: Batch
    on_done: DoneCallback
    key: str = ""
    future: Any = None
    worker: str = ""
    pid: int | None = None
    done: bool = False
    #: submits the batch again (a batch dask gave up on before it started), and how often
    #: that has been done already
    again: Callable[[], None] | None = None
    retries: int = 0


class Listener:
    """The "started" events of one client's batches, dispatched to the batches they concern.
    The handler runs in the client's event loop; what calls back into the client runs in a
    thread of its own.

    A batch that starts a second time, on another worker, lost its first worker while it ran
    (dask runs a task again when its worker dies, up to the scheduler's ``allowed-failures``):
    the batch fails with ``WorkerCrashedError`` naming that first worker, its future is
    cancelled and the worker running it again is restarted, and the error says that it was
    started again. (The scheduler's own ``remove-worker`` events would tell sooner, but its
    ``all`` topic also carries objects that cannot be sent to a client, which breaks the
    client's connection.)"""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.running: dict[str, Running] = {}
        client.subscribe_topic(STARTED_TOPIC, _never_raising(self._started))

    @classmethod
    def of(cls, client: Any) -> Listener:
        with _lock:
            listener = _listeners.get(id(client))
            if listener is None or listener.client is not client:
                listener = _listeners[id(client)] = cls(client)
            return listener

    def _started(self, event: tuple[float, Any]) -> None:
        what, batch_id, address, pid = event[1]
        with self.lock:
            running = self.running.get(batch_id)
            if running is None:
                return  # another client's batch, or one answered for already
            if what == "done":
                running.done = True
                return
            if not running.worker:
                running.worker, running.pid = address, pid
                running.batch.mark_task_started(0)
                return
            if running.done:
                return  # its result was lost with a worker before it was fetched: computed again
            del self.running[batch_id]
        threading.Thread(
            target=self._fail, args=(running, address), daemon=True, name="parproc-dask"
        ).start()

    def _fail(self, running: Running, again_on: str) -> None:
        batch = running.batch
        try:
            if running.future is not None:
                self.client.cancel([running.future], force=True)
            self.client.run(kill_descendants, workers=[again_on])
            self.client.restart_workers([again_on], raise_for_error=False)
        except Exception:
            pass  # no nanny, or the client is closing
        error = WorkerCrashedError(
            exitcode=None,
            pid=running.pid,
            worker=running.worker,
            task=batch.describe(batch.running_offset),
            ended=(
                "left the dask cluster unexpectedly (dask started the batch again on worker "
                f"{again_on}, which was restarted to stop it; that second run's outcome is "
                "not used)"
            ),
        )
        running.on_done(batch, BatchOutcome(error=error, worker=running.worker))

    def finished(self, batch_id: str, future: Any) -> None:
        """A batch's future is done (finished, erred or cancelled): hand its outcome over. A
        result lost with a worker before it was fetched (status "lost") is computed again by
        dask: wait for that."""
        if future.status == "lost":
            threading.Thread(
                target=self._await_again, args=(batch_id, future), daemon=True, name="parproc-dask"
            ).start()
            return
        with self.lock:
            running = self.running.pop(batch_id, None)
        if running is None:
            return  # a crash or an abort answered for it already
        batch = running.batch
        status = future.status
        if status == "finished":
            try:
                outcome = BatchOutcome(payload=future.result(), decoder=decode_outcome)
            except BaseException as lost:  # cancelled or lost since (the client is closing)
                outcome = BatchOutcome(error=lost)
        elif status == "cancelled":
            try:
                future.result()
                why: BaseException | None = None
            except BaseException as reason:
                why = reason
            cancelled = RuntimeError(
                f"dask cancelled {batch.describe(0)} (not at this process's ask): {why}"
            )
            cancelled.__cause__ = why
            outcome = BatchOutcome(error=cancelled)
        elif status == "error":
            error = future.exception()
            never_ran = type(error).__name__ == "KilledWorker" and not running.worker
            if never_ran and running.again is not None and running.retries < MAX_RETRIES:
                # Queued on a worker that died (the scheduler fails every task it had, with
                # allowed-failures 0), it never started: it runs elsewhere, as it would have.
                running.again()
                return
            outcome = BatchOutcome(error=_as_crash(error, running, batch))
        else:
            odd = RuntimeError(f"the dask future of {batch.describe(0)} ended as {status!r}")
            outcome = BatchOutcome(error=odd)
        outcome.worker = running.worker
        running.on_done(batch, outcome)

    def _await_again(self, batch_id: str, future: Any) -> None:
        try:
            distributed: Any = importlib.import_module("distributed")
            distributed.wait([future])
        except Exception:
            pass  # the client is closing: the status says what became of it
        self.finished(batch_id, future)


def _never_raising(handler: Callable[[Any], None]) -> Callable[[Any], None]:
    """An event handler that cannot raise: an exception in a handler breaks the client's
    connection to the scheduler (and every future of the client with it)."""

    def handle(event: Any) -> None:
        try:
            handler(event)
        except Exception as error:
            warnings.warn(
                f"pytest-parproc's dask backend could not handle the event {event!r}: "
                f"{type(error).__name__}: {error}",
                RuntimeWarning,
                stacklevel=1,
            )

    return handle


def _as_crash(error: BaseException, running: Running, batch: Batch) -> BaseException:
    """dask's KilledWorker (the batch's workers all died running it) as a WorkerCrashedError."""
    if type(error).__name__ != "KilledWorker":
        return error
    last = getattr(getattr(error, "last_worker", None), "address", "") or running.worker
    return WorkerCrashedError(
        exitcode=None,
        pid=running.pid,
        worker=last,
        task=batch.describe(batch.running_offset),
        ended=f"died while running it (dask: {error})",
    )
