"""The worker process: boot, run the initializer, then run batches until told to stop.

Started as ``python -c <boot line> READ_FD WRITE_FD`` (fork+exec, so it is safe whatever
threads the parent has). Messages are bytes with a one-letter tag:

    parent -> worker   I<pickled WorkerSetup>   B<batch payload>   S (stop)
    worker -> parent   R (ready)   E<traceback> (initializer failed)   D<outcome>   X<reason>

One batch at a time: the parent sends a batch only to a worker that is idle, so it always
knows which task a dead worker was running.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

PARENT_CHECK_S = 1.0


@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker needs before its first batch; pickled with cloudpickle."""

    name: str
    parent_pid: int
    sys_path: list[str]
    initializer: Any = None
    initargs: tuple[Any, ...] = ()
    finalizer: Any = None
    max_tasks: int | None = None
    max_memory_bytes: int | None = None


def _watch_parent(parent_pid: int) -> None:
    # If the parent is killed (even with SIGKILL) the worker is re-parented; exit then rather
    # than run on as an orphan. A busy worker never reads its pipe, so a thread must look.
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent_pid:
            os._exit(3)


def _limit_reached(setup: WorkerSetup, tasks_done: int) -> str:
    if setup.max_tasks is not None and tasks_done >= setup.max_tasks:
        return f"ran {tasks_done} tasks (max_tasks_per_worker={setup.max_tasks})"
    if setup.max_memory_bytes is not None:
        from .process_tree import resident_memory_bytes

        rss = resident_memory_bytes()
        if rss > setup.max_memory_bytes:
            return f"uses {rss} bytes (max_worker_memory={setup.max_memory_bytes})"
    return ""


def main(read_fd: int, write_fd: int) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable(all_threads=True)
    inbox = Connection(read_fd, writable=False)
    outbox = Connection(write_fd, readable=False)
    message = inbox.recv_bytes()
    setup: WorkerSetup = pickle.loads(memoryview(message)[1:])
    sys.path[:] = setup.sys_path
    os.environ["PYTEST_PARPROC_WORKER_NAME"] = setup.name
    threading.Thread(target=_watch_parent, args=(setup.parent_pid,), daemon=True).start()

    from ..config import set_nested_fallback
    from ..tasks import run_batch_payload

    set_nested_fallback("threading", 1)
    if setup.initializer is not None:
        try:
            setup.initializer(*setup.initargs)
        except BaseException:
            outbox.send_bytes(b"E" + traceback.format_exc().encode("utf-8", "replace"))
            sys.exit(1)
    outbox.send_bytes(b"R")
    tasks_done = 0
    try:
        while True:
            try:
                message = inbox.recv_bytes()
            except EOFError:
                return  # the parent closed the pipe: it is gone or shutting down
            if message[:1] != b"B":
                return
            result, n_tasks = run_batch_payload(memoryview(message)[1:])
            outbox.send_bytes(b"D" + result)
            tasks_done += n_tasks
            reason = _limit_reached(setup, tasks_done)
            if reason:
                outbox.send_bytes(b"X" + reason.encode())
                return
    finally:
        if setup.finalizer is not None:
            setup.finalizer()
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
