"""Workers started by a plain ``fork`` (no exec): they inherit the parent's memory.

Only safe while the parent has a single thread (a lock held by another thread stays locked
forever in the child), so the pool forks only before its manager thread exists and only when
no other thread runs but those declared idle (``resources.allow_fork_beside``). The child
runs the usual worker loop and leaves with ``os._exit``: the parent's ``atexit`` handlers and
buffered files are the parent's business, not the child's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import IO

from ..resources import idle_threads_alive

WAIT_STEP_S = 0.005


class ForkedProcess:
    """The parts of ``subprocess.Popen`` the pool uses, for a child made by ``os.fork``."""

    def __init__(self, pid: int, stderr: IO[bytes]) -> None:
        self.pid = pid
        self.stderr: IO[bytes] | None = stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1  # reaped elsewhere; the status is lost
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"worker pid {self.pid}", timeout or 0.0)
            time.sleep(WAIT_STEP_S)
        assert self.returncode is not None
        return self.returncode


def fork_worker(
    child_read: int,
    child_write: int,
    close_in_child: Sequence[int],
    environment: Mapping[str, str],
) -> ForkedProcess:
    """Fork a worker that runs ``worker.main(child_read, child_write)`` with ``environment``
    added to its variables; its stderr is a pipe whose reading end the returned process holds,
    like ``Popen(stderr=PIPE)``."""
    stderr_read, stderr_write = os.pipe()
    # Whatever the parent buffered would otherwise be written twice, once by each process.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    if idle_threads_alive():
        # Python 3.12 warns of any fork beside threads; these were declared idle (resources).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    else:
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; measured through the pool's tests
        _child(child_read, child_write, stderr_read, stderr_write, close_in_child, environment)
    os.close(stderr_write)
    return ForkedProcess(pid, os.fdopen(stderr_read, "rb", buffering=0))


def _child(
    child_read: int,
    child_write: int,
    stderr_read: int,
    stderr_write: int,
    close_in_child: Sequence[int],
    environment: Mapping[str, str],
) -> None:  # pragma: no cover - runs in the forked child
    code = 1
    try:
        os.environ.update(environment)
        os.close(stderr_read)
        for fd in close_in_child:
            try:
                os.close(fd)
            except OSError:
                pass
        os.dup2(stderr_write, 2)
        os.close(stderr_write)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        import contextvars

        from .worker import main

        # A context of its own: the parent's parallel_config (this pool's backend) must not
        # be what tasks nested in this worker get.
        contextvars.Context().run(main, child_read, child_write)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(code)
