"""The worker process: boot, run the initializer, then run batches until told to stop.

Started as ``python -c <boot line> READ_FD WRITE_FD`` (fork+exec, so it is safe whatever
threads the parent has). Messages (see ``wire``) are bytes with a one-letter tag:

    parent -> worker   I<pickled WorkerSetup>   B<batch payload>   S (stop)
    worker -> parent   R (ready)   E<traceback> (initializer failed)   D<outcome>   X<reason>

One batch at a time: the parent sends a batch only to a worker that is idle, so it always
knows which task a dead worker was running. Start-up time is time before the first task, so
this module and what it imports stay small (no ``typing``, ``dataclasses`` or
``multiprocessing`` at run time).
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import sys
import threading
import time

from .wire import receive_message, send_message

# Not ``typing.TYPE_CHECKING``: importing typing costs a worker ~10 ms at start-up, and
# type checkers honour any constant of this name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PARENT_CHECK_S = 1.0


class WorkerSetup:
    """Everything a worker needs before its first batch; pickled with cloudpickle."""

    def __init__(
        self,
        name: str,
        parent_pid: int,
        initializer: Any = None,
        initargs: tuple[Any, ...] = (),
        finalizer: Any = None,
        max_tasks: int | None = None,
        max_memory_bytes: int | None = None,
    ) -> None:
        self.name = name
        self.parent_pid = parent_pid
        self.initializer = initializer
        self.initargs = initargs
        self.finalizer = finalizer
        self.max_tasks = max_tasks
        self.max_memory_bytes = max_memory_bytes


def _watch_parent(parent_pid: int) -> None:
    # If the parent is killed (even with SIGKILL) the worker is re-parented; exit then rather
    # than run on as an orphan. A busy worker never reads its pipe, so a thread must look.
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent_pid:
            if os.getpgid(0) == os.getpid():
                # A worker that leads a process group of its own (the pytest plugin's do) takes
                # the processes its tasks started with it; SIGKILL reaches this one too.
                os.killpg(0, signal.SIGKILL)
            os._exit(3)


_retire_reason = ""
_in_worker = False  # set by main(): this process is a loky worker


def retire_worker(reason: str) -> None:
    """Called by a task: this worker process leaves once the task's batch is done (its result
    is sent first), and the pool starts a fresh one if there is work left. For tasks that know
    their process is spent (it leaks, or holds state that must not reach the next task).
    Outside a loky worker it does nothing."""
    global _retire_reason
    if _in_worker:
        _retire_reason = reason or "the task asked it to retire"


def _limit_reached(setup: WorkerSetup, tasks_done: int) -> str:
    if _retire_reason:
        return _retire_reason
    if setup.max_tasks is None and setup.max_memory_bytes is None:
        return ""  # (no import after every batch of a worker that does not recycle)
    from ..resources import recycling_limit_reached

    reached = recycling_limit_reached(tasks_done, setup.max_tasks, setup.max_memory_bytes)
    if reached is None:
        return ""
    if reached[0] == "tasks":
        return f"ran {tasks_done} tasks (max_tasks_per_worker={setup.max_tasks})"
    return f"uses {reached[1]} bytes (max_worker_memory={setup.max_memory_bytes})"


def main(read_fd: int, write_fd: int) -> None:
    global _in_worker, _retire_reason
    _in_worker, _retire_reason = True, ""  # a forked worker starts with its parent's values
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable(all_threads=True)
    # The setup comes in two layers: the caller's sys.path first, in plain pickle, because the
    # initializer and finalizer may live in modules only that path can find.
    message = receive_message(read_fd)
    sys_path, name, authkey, setup_bytes = pickle.loads(memoryview(message)[1:])
    sys.path[:] = sys_path
    if authkey is not None:
        import multiprocessing.process

        multiprocessing.process.current_process().authkey = authkey
    setup: WorkerSetup = pickle.loads(setup_bytes)
    setup.name = name
    threading.Thread(target=_watch_parent, args=(setup.parent_pid,), daemon=True).start()

    from ..nesting import set_nested_fallback
    from ..tasks import run_batch_payload

    set_nested_fallback("threading", 1, "loky")
    if setup.initializer is not None:
        try:
            setup.initializer(*setup.initargs)
        except BaseException:
            import traceback

            send_message(write_fd, b"E" + traceback.format_exc().encode("utf-8", "replace"))
            sys.exit(1)
    send_message(write_fd, b"R")
    tasks_done = 0
    try:
        while True:
            try:
                message = receive_message(read_fd)
            except EOFError:
                return  # the parent closed the pipe: it is gone or shutting down
            if message[:1] != b"B":
                return
            result, n_tasks = run_batch_payload(memoryview(message)[1:])
            # What the tasks printed reaches the terminal batch by batch, not at exit (stdout
            # is block-buffered when it is not a terminal).
            sys.stdout.flush()
            tasks_done += n_tasks
            reason = _limit_reached(setup, tasks_done)
            if reason:
                # Before the result: once the parent has the result it may send a new batch.
                send_message(write_fd, b"X" + reason.encode())
            send_message(write_fd, b"D" + result)
            if reason:
                return
    finally:
        if setup.finalizer is not None:
            setup.finalizer()
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
