"""The process pool behind the loky backend: one manager thread, one batch per worker.

    caller threads                       manager thread                    worker processes
    --------------                       --------------                    ----------------
    submit(batch, payload, on_done) -->  pending deque (under a lock)
                                         wake pipe ----------------------> spawn (fork+exec)
                                         idle worker?  send B<payload> --> run the batch
                                         select() on result pipes, <----- D<outcome> / X / E
                                         stderr pipes and pidfds
    on_done(batch, outcome) <----------  callback, in this thread
    cancel(batches) ------------------>  drop pending; kill the trees of workers running them

Everything about a worker (its handle, its batch) is touched only by the manager thread;
callers only append to ``pending``, add to ``drop`` and wake the manager. Results are found
with ``selectors`` (epoll), never by polling; a worker's death is seen on its pidfd or on the
end of its result pipe, and the batch it held fails with the exit code, the signal and the
tail of its stderr.
"""

from __future__ import annotations

import itertools
import os
import pickle
import selectors
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ..backends.base import Batch, BatchOutcome, DoneCallback
from ..errors import UnpicklableTaskError, WorkerCrashedError, WorkerStartError
from ..resources import fork_is_safe
from ..tasks import decode_outcome
from .handle import WorkerHandle
from .inherited import thread_limits
from .worker import WorkerSetup

STOP_GRACE_S = 2.0


@dataclass(frozen=True)
class PoolSettings:
    """What makes two pools interchangeable: a pool is reused only for equal settings."""

    initializer: Any = None
    initargs: tuple[Any, ...] = ()
    finalizer: Any = None
    idle_timeout_s: float = 300.0
    start_timeout_s: float = 60.0
    max_tasks_per_worker: int | None = None
    max_worker_memory: int | None = None
    environment: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    #: "fork": the first workers are forked (no exec) if this process has one thread then
    start_method: str = "exec"
    #: the caller's own thread-limit variables when the call started: a pool whose workers
    #: got other values is not reused (joblib's workers follow such a change too)
    parent_limits: tuple[tuple[str, str | None], ...] = ()
    #: the caller's multiprocessing key where a manager can exist (``inherited.authkey``): a
    #: pool started before the first manager, whose workers lack it, is not reused after
    authkey: bytes | None = None


class ProcessPool:
    def __init__(self, max_workers: int, settings: PoolSettings) -> None:
        # Serialized first, in the caller, so a setting that cannot travel (an initializer
        # argument that does not pickle) is the caller's error, not the manager thread's.
        try:
            self._setup = cloudpickle.dumps(
                WorkerSetup(
                    name="",
                    parent_pid=os.getpid(),
                    initializer=settings.initializer,
                    initargs=settings.initargs,
                    finalizer=settings.finalizer,
                    max_tasks=settings.max_tasks_per_worker,
                    max_memory_bytes=settings.max_worker_memory,
                )
            )
        except Exception as error:
            raise UnpicklableTaskError(
                "the pool's initializer, initargs or finalizer cannot be sent to worker "
                f"processes: {type(error).__name__}: {error}"
            ) from error
        self._environment = {**thread_limits(max_workers), **dict(settings.environment)}
        self.max_workers = max_workers
        self.settings = settings
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._pending: deque[tuple[Batch, bytes, DoneCallback]] = deque()
        self._drop: set[int] = set()
        self._shutting_down = False
        self._closed = False  # the wake pipe is closed: nothing may be written to its number
        self._workers: list[WorkerHandle] = []
        self._names = itertools.count()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        if settings.start_method == "fork" and fork_is_safe():
            # Before the manager thread exists: with it, forking would no longer be safe.
            for _ in range(max_workers):
                try:
                    self._spawn(fork=True)
                except OSError:
                    break  # out of processes, say: the manager starts the rest by fork+exec
        self._thread = threading.Thread(target=self._manage, name="parproc-pool", daemon=True)
        self._thread.start()

    # ----- called from any thread -------------------------------------------------------

    def submit(self, batch: Batch, payload: bytes, on_done: DoneCallback) -> None:
        with self._lock:
            if self._shutting_down:
                raise RuntimeError("the process pool has been shut down")
            self._pending.append((batch, payload, on_done))
        self._wake()

    def cancel(self, batches: list[Batch]) -> None:
        """Forget queued ``batches``; kill the workers running the others (no callback)."""
        ids = {batch.key for batch in batches}
        with self._lock:
            self._pending = deque(item for item in self._pending if item[0].key not in ids)
            self._drop |= ids
        self._wake()

    def resize(self, max_workers: int) -> None:
        with self._lock:
            self.max_workers = max_workers
        self._wake()

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            self._shutting_down = True
        self._wake()
        if wait and self._thread is not threading.current_thread():
            self._thread.join(STOP_GRACE_S + 5.0)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._shutting_down

    def worker_pids(self) -> list[int]:
        return [worker.pid for worker in list(self._workers)]

    def _wake(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                os.write(self._wake_write, b"x")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already

    # ----- the manager thread -----------------------------------------------------------

    def _manage(self) -> None:
        try:
            while True:
                with self._lock:
                    stopping = self._shutting_down
                    drop, self._drop = self._drop, set()
                if stopping:
                    return
                if drop:
                    self._kill_running(drop)
                self._dispatch()
                for key, _ in self._selector.select(self._next_deadline()):
                    self._handle(key.data, key.fd)
                self._retire_idle()
                self._give_up_on_slow_starts()
        finally:
            # Also after an unexpected error in this thread: no caller may wait forever, and
            # no worker may outlive the pool.
            with self._lock:
                self._shutting_down = True
            self._stop_all()
            self._fail_pending(RuntimeError("the process pool was shut down"))
            self._selector.close()
            with self._lock:
                self._closed = True
                os.close(self._wake_read)
                os.close(self._wake_write)

    def _handle(self, data: tuple[str, WorkerHandle] | None, fd: int) -> None:
        if data is None:
            try:
                while os.read(self._wake_read, 4096):
                    pass
            except BlockingIOError:
                pass
            return
        kind, worker = data
        if worker.gone:
            return
        if kind == "stderr":
            if not worker.read_stderr():
                self._selector.unregister(fd)
        elif kind == "pid":
            self._worker_gone(worker)
        else:
            try:
                message = worker.receive()
            except (EOFError, OSError):
                self._worker_gone(worker)
                return
            self._on_message(worker, message)

    def _on_message(self, worker: WorkerHandle, message: bytearray) -> None:
        tag = message[:1]
        if tag == b"D":
            batch, on_done = worker.batch, worker.on_done
            worker.batch = worker.on_done = None
            worker.idle_since = time.monotonic()
            if worker.retiring:
                worker.send(b"S")
            if batch is not None and on_done is not None:
                outcome = BatchOutcome(
                    payload=memoryview(message)[1:],
                    decoder=decode_outcome,
                    worker=worker.label,
                )
                on_done(batch, outcome)
        elif tag == b"R":
            worker.ready = True
            worker.idle_since = time.monotonic()
        elif tag == b"X":
            worker.retiring = True  # it stops by itself after this message
        elif tag == b"E":
            worker.start_error = message[1:].decode("utf-8", "replace")

    def _spawn(self, fork: bool = False) -> WorkerHandle:
        close_in_child: list[int] = []
        if fork:
            close_in_child = [self._wake_read, self._wake_write, self._selector.fileno()]
            for other in self._workers:
                close_in_child += [other.inbox_fd, other.outbox_fd, other.stderr_fd]
                close_in_child += [] if other.pidfd is None else [other.pidfd]
        worker = WorkerHandle(f"w{next(self._names)}", self._environment, fork, close_in_child)
        setup = pickle.dumps((list(sys.path), worker.name, self.settings.authkey, self._setup))
        if not worker.send(b"I" + setup):
            worker.kill()
            worker.reap()
            worker.close()
            raise OSError(f"worker {worker.label} died before it got its setup")
        self._selector.register(worker.inbox_fd, selectors.EVENT_READ, ("msg", worker))
        self._selector.register(worker.stderr_fd, selectors.EVENT_READ, ("stderr", worker))
        if worker.pidfd is not None:
            self._selector.register(worker.pidfd, selectors.EVENT_READ, ("pid", worker))
        self._workers.append(worker)
        return worker

    def _dispatch(self) -> None:
        with self._lock:
            if not self._pending:
                return
            for worker in self._workers:
                if not self._pending:
                    break
                if worker.ready and worker.batch is None and not worker.retiring:
                    batch, payload, on_done = self._pending.popleft()
                    self._start_batch(worker, batch, payload, on_done)
            starting = sum(1 for worker in self._workers if not worker.ready)
            live = sum(1 for worker in self._workers if not worker.retiring)
            wanted = min(len(self._pending) - starting, self.max_workers - live)
        for _ in range(max(0, wanted)):
            try:
                self._spawn()
            except OSError as error:
                self._fail_pending(WorkerStartError(f"could not start a worker process: {error}"))
                return

    def _start_batch(
        self, worker: WorkerHandle, batch: Batch, payload: bytes, on_done: DoneCallback
    ) -> None:
        worker.batch, worker.on_done = batch, on_done
        batch.mark_started()
        if not worker.send(b"B" + payload):
            pass  # the worker is dying; its death is reported through its pidfd or pipe

    def _kill_running(self, drop: set[int]) -> None:
        for worker in self._workers:
            if worker.batch is not None and worker.batch.key in drop:
                # Doomed: it may still report the batch it was running before the kill lands,
                # and must not be handed another one then.
                worker.dropped = worker.retiring = True
                worker.kill()

    def _worker_gone(self, worker: WorkerHandle) -> None:
        worker.gone = True
        for fd in (worker.inbox_fd, worker.stderr_fd, worker.pidfd):
            if fd is not None:
                try:
                    self._selector.unregister(fd)
                except (KeyError, ValueError):
                    pass
        exitcode = worker.reap()
        # What it wrote before it exited counts: a result (D) or its notice of leaving (X) may
        # still be in the pipe when its pidfd reports the exit.
        for message in worker.receive_remaining():
            self._on_message(worker, message)
        worker.read_stderr()
        self._workers.remove(worker)
        worker.close()
        if worker.dropped:
            return
        batch, on_done = worker.batch, worker.on_done
        if batch is not None and on_done is not None:
            error = WorkerCrashedError(
                exitcode=exitcode,
                pid=worker.pid,
                worker=worker.name,
                task=batch.describe(),
                stderr_tail=worker.tail_text(),
            )
            on_done(batch, BatchOutcome(error=error, worker=worker.label))
        elif not worker.ready:
            detail = worker.start_error or worker.tail_text()
            self._fail_pending(
                WorkerStartError(
                    f"worker {worker.label} exited with code {exitcode} before it was ready"
                    + (f":\n{detail}" if detail else "")
                )
            )

    def _fail_pending(self, error: BaseException) -> None:
        with self._lock:
            failed, self._pending = self._pending, deque()
        for batch, _, on_done in failed:
            on_done(batch, BatchOutcome(error=error))

    def _next_deadline(self) -> float | None:
        """Seconds until an idle worker expires or a starting one is given up on."""
        settings = self.settings
        deadlines = [
            w.idle_since + settings.idle_timeout_s
            for w in self._workers
            if w.ready and w.batch is None and not w.retiring
        ]
        deadlines += [
            w.started_at + settings.start_timeout_s
            for w in self._workers
            if not w.ready and not w.dropped
        ]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _give_up_on_slow_starts(self) -> None:
        # A worker that never gets ready (an initializer that hangs, an import that blocks)
        # would otherwise keep every pending batch, and the caller, waiting forever.
        limit_s = self.settings.start_timeout_s
        now = time.monotonic()
        for worker in self._workers:
            if worker.ready or worker.dropped or now - worker.started_at < limit_s:
                continue
            worker.dropped = worker.retiring = True
            worker.kill()
            worker.read_stderr()
            detail = worker.tail_text()
            self._fail_pending(
                WorkerStartError(
                    f"worker {worker.label} did not become ready within {limit_s:g} s "
                    "(worker_start_timeout); is its initializer stuck?"
                    + (f"\n{detail}" if detail else "")
                )
            )

    def _retire_idle(self) -> None:
        now = time.monotonic()
        live = [w for w in self._workers if not w.retiring]
        excess = len(live) - self.max_workers
        for worker in live:
            idle = worker.ready and worker.batch is None
            expired = idle and now - worker.idle_since >= self.settings.idle_timeout_s
            if expired or (excess > 0 and (idle or worker.batch is not None)):
                worker.retiring = True
                excess -= 1
                if idle:
                    worker.send(b"S")

    def _stop_all(self) -> None:
        running = [
            (worker.batch, worker.on_done)
            for worker in self._workers
            if worker.batch is not None and worker.on_done is not None
        ]
        for worker in self._workers:
            worker.dropped = True
            worker.send(b"S")
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in list(self._workers):
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:
                worker.kill()
            self._worker_gone(worker)
        error = RuntimeError("the process pool was shut down while this task was running")
        for batch, on_done in running:
            on_done(batch, BatchOutcome(error=error))
