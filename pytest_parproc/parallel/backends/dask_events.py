"""What the dask backend hears from the cluster: the outcome of each batch's future, and the
"started" and "done" events its batches send (``dask_tasks``), turned into the engine's
outcomes, a dead worker's batch included."""

from __future__ import annotations

import importlib
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import WorkerCrashedError
from ..tasks import decode_outcome
from .base import Batch, BatchOutcome, DoneCallback
from .dask_tasks import REFUSED, STARTED_TOPIC, kill_descendants

_listeners: dict[int, Listener] = {}  # id(client) -> its listener
#: How often a batch that never started is submitted again after its worker died.
MAX_RETRIES = 3
#: How often the presence of the workers that pinned batches wait for is checked (seconds).
PINNED_POLL_S = 0.5
#: How long a crash waits for the dead worker's exit code to show in its nanny's log, and how
#: many of each nanny's last log lines are looked at.
EXIT_CODE_WAIT_S = 2.0
NANNY_LOG_LINES = 200
_DEATH = re.compile(r"Worker process (\d+) (?:exited with status (\d+)|was killed by signal (\d+))")
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
    #: the batch refuses to run a second time (``run_once``): no worker is restarted to stop it
    run_once: bool = False
    #: submits the batch again (a batch dask gave up on before it started), and how often
    #: that has been done already
    again: Callable[[], None] | None = None
    retries: int = 0
    #: the address of the one worker it may run on (``Pinned``)
    pinned: str = ""


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
        self._watching = False
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
            if running.done and not running.run_once:
                return  # its result was lost with a worker before it was fetched: computed again
            del self.running[batch_id]
        threading.Thread(
            target=self._fail, args=(running, address), daemon=True, name="parproc-dask"
        ).start()

    def _fail(self, running: Running, again_on: str) -> None:
        try:
            if running.future is not None:
                self.client.cancel([running.future], force=True)
            if not running.run_once:
                self.client.run(kill_descendants, workers=[again_on])
                self.client.restart_workers([again_on], raise_for_error=False)
        except Exception:
            pass  # no nanny, or the client is closing
        stopped = "refused to run it" if running.run_once else "was restarted to stop it"
        self._crashed(
            running,
            f"left the dask cluster unexpectedly (dask started the batch again on worker "
            f"{again_on}, which {stopped}; that second run's outcome is not used)",
        )

    def _crashed(self, running: Running, ended: str) -> None:
        batch = running.batch
        error = WorkerCrashedError(
            exitcode=None,
            pid=running.pid,
            worker=running.worker or running.pinned,
            task=batch.describe(batch.running_offset),
            ended=ended,
        )
        self._deliver_crash(running, error)

    def _deliver_crash(self, running: Running, error: WorkerCrashedError) -> None:
        """Hand a crash over with the dead worker's exit code where its nanny logged it (in a
        thread of its own: the nanny may be reachable only once it restarted the worker)."""

        def deliver() -> None:
            exitcode = self._exit_code(error.worker, error.pid) if error.pid else None
            told = error
            if exitcode is not None:
                told = WorkerCrashedError(
                    exitcode=exitcode,
                    pid=error.pid,
                    worker=error.worker,
                    task=error.task,
                    ended=error.ended,
                )
            running.on_done(running.batch, BatchOutcome(error=told, worker=running.worker))

        threading.Thread(target=deliver, daemon=True, name="parproc-dask-crash").start()

    def _exit_code(self, address: str, pid: int) -> int | None:
        """The exit code a nanny logged for worker process ``pid`` on ``address``'s host
        (``Worker process 12 was killed by signal 9``: dask keeps exit codes nowhere else);
        None where no nanny on that host has, within ``EXIT_CODE_WAIT_S``."""
        host = _host(address)
        deadline = time.monotonic() + EXIT_CODE_WAIT_S
        while True:
            try:
                logs = self.client.get_worker_logs(n=NANNY_LOG_LINES, nanny=True)
            except Exception:
                return None  # the client is closing
            for worker, entries in logs.items():
                if _host(str(worker)) != host or not isinstance(entries, (list, tuple)):
                    continue
                for entry in entries:
                    found = _DEATH.search(str(entry[-1]))
                    if found and int(found.group(1)) == pid:
                        status, signum = found.group(2), found.group(3)
                        return int(status) if status else -int(signum)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    def watch_pinned(self) -> None:
        """While batches pinned to one worker are running: a batch whose worker left the
        cluster fails with ``WorkerCrashedError`` (a cluster that runs a dead worker's tasks
        again, ``allowed-failures`` above 0, leaves such a task waiting for that worker)."""
        with self.lock:
            if self._watching:
                return
            self._watching = True
        threading.Thread(target=self._watch, daemon=True, name="parproc-dask-pinned").start()

    def _watch(self) -> None:
        while True:
            time.sleep(PINNED_POLL_S)
            with self.lock:
                pinned = {key: r for key, r in self.running.items() if r.pinned}
                if not pinned:
                    self._watching = False
                    return
            try:
                workers = self.client.scheduler_info(n_workers=-1)["workers"]
            except Exception:
                continue  # the client is closing: its futures say what became of them
            # (a batch may be pinned to a worker's name as well as to its address)
            present = {*workers, *(str(info.get("name")) for info in workers.values())}
            for batch_id, running in pinned.items():
                if running.pinned in present:
                    continue
                with self.lock:
                    if self.running.pop(batch_id, None) is None:
                        continue  # answered for meanwhile
                if running.future is not None:
                    self.client.cancel([running.future], force=True)
                started = "while running it" if running.worker else "before it started it"
                self._crashed(running, f"left the dask cluster {started} (it was pinned there)")

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
                payload = future.result()
                outcome = BatchOutcome(payload=payload, decoder=decode_outcome)
            except BaseException as lost:  # cancelled or lost since (the client is closing)
                outcome = BatchOutcome(error=lost)
            else:
                if payload == REFUSED:  # computed again after its result was lost: not run
                    ended = "left the dask cluster unexpectedly, holding the batch's result"
                    self._crashed(running, ended)
                    return
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
            crash = _as_crash(error, running, batch)
            if isinstance(crash, WorkerCrashedError):
                self._deliver_crash(running, crash)
                return
            outcome = BatchOutcome(error=crash)
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


def _host(address: str) -> str:
    """``tcp://10.0.0.5:8786`` -> ``10.0.0.5``."""
    return address.split("://")[-1].rsplit(":", 1)[0]


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
        ended=f"left the dask cluster while running it (dask: {error})",
    )
