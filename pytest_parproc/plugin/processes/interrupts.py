"""How Ctrl-C reaches the test a worker is running, as KeyboardInterrupt (as in a serial run).

- A worker whose tests run in its main thread (loky, multiprocessing) gets SIGINT from the main
  process (``RunDirectory.interrupt_workers``) and takes it for KeyboardInterrupt only while a
  test runs; otherwise it ignores it, so that the teardown that follows runs to its end.
- A dask worker runs tests in a thread of its own (SIGINT would end the worker's event loop):
  the main process has ``interrupt_tests`` run on each worker (``Client.run``), which raises
  KeyboardInterrupt in that thread asynchronously. Python checks for such an exception between
  bytecodes: a test blocked in a call into C (``time.sleep``, a socket read) gets it once the
  call returns.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
#: (run id, thread id) of the test running now in a thread other than the main thread
_running: tuple[str, int] | None = None


@contextmanager
def interruptible(run_id: str) -> Iterator[None]:
    """Around one test of run ``run_id``: Ctrl-C in the main process interrupts it."""
    if threading.current_thread() is not threading.main_thread():
        yield from _in_thread(run_id)
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _in_thread(run_id: str) -> Iterator[None]:
    global _running
    with _lock:
        _running = (run_id, threading.get_ident())
    try:
        yield
    finally:
        while True:
            try:
                with _lock:
                    _running = None
                # One sent as the test ended, not raised yet, would land in the worker's code.
                _set_async_exc(threading.get_ident(), None)
                break
            except KeyboardInterrupt:
                continue  # it was raised just now: the test is over all the same


async def interrupt_tests(run_id: str) -> bool:
    """On a dask worker (``Client.run``; a coroutine, run in the worker's event loop): raise
    KeyboardInterrupt in the thread running a test of run ``run_id``, once. Returns whether
    one was running."""
    global _running
    with _lock:
        if _running is None or _running[0] != run_id:
            return False
        thread = _running[1]
        _running = None
        _set_async_exc(thread, KeyboardInterrupt)
        return True


def _set_async_exc(thread: int, exception: type[BaseException] | None) -> None:
    """CPython's way to raise an exception in another thread (None: drop one not raised yet)."""
    value = None if exception is None else ctypes.py_object(exception)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), value)
