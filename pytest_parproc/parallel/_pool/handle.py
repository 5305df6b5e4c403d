"""The parent's handle on one worker process: start it, talk to it, keep its stderr tail."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .forked import ForkedProcess, fork_worker
from .process_tree import kill_process_tree
from .wire import receive_message, send_message

if TYPE_CHECKING:
    from ..backends.base import Batch, DoneCallback

STDERR_TAIL_BYTES = 16_384

# The worker runs as a fresh interpreter (fork+exec), which is safe whatever threads the
# parent has. The path of this package is put first so a checkout that is not installed works.
_BOOT = (
    "import sys; sys.path.insert(0, {root!r}); "
    "from pytest_parproc.parallel._pool.worker import main; "
    "main(int(sys.argv[1]), int(sys.argv[2]))"
)
_PACKAGE_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)


def _exec_worker(
    child_read: int, child_write: int, environment: dict[str, str] | None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **environment} if environment else None
    return subprocess.Popen(
        [sys.executable, "-c", _BOOT.format(root=_PACKAGE_ROOT), str(child_read), str(child_write)],
        pass_fds=(child_read, child_write),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        close_fds=True,
    )


class WorkerHandle:
    """One worker process as the pool's manager thread sees it (only that thread touches it)."""

    def __init__(
        self,
        name: str,
        environment: dict[str, str] | None,
        fork: bool = False,
        close_in_child: Sequence[int] = (),
    ) -> None:
        """``fork``: start by a plain fork (the caller checked it is safe), closing the
        parent's ``close_in_child`` descriptors in the child; otherwise by fork+exec."""
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        try:
            if fork:
                self.process: subprocess.Popen[bytes] | ForkedProcess = fork_worker(
                    child_read,
                    child_write,
                    (*close_in_child, parent_read, parent_write),
                    environment or {},
                )
            else:
                self.process = _exec_worker(child_read, child_write, environment)
        finally:
            os.close(child_read)
            os.close(child_write)
        self.name = name
        self.pid = self.process.pid
        self.inbox_fd = parent_read
        self.outbox_fd = parent_write
        assert self.process.stderr is not None
        self.stderr_fd = self.process.stderr.fileno()
        os.set_blocking(self.stderr_fd, False)
        self.stderr_tail = bytearray()
        self.pidfd: int | None = None
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                self.pidfd = pidfd_open(self.pid)
            except OSError:
                self.pidfd = None
        self.ready = False
        self.started_at = time.monotonic()
        self.batch: Batch | None = None
        self.on_done: DoneCallback | None = None
        self.idle_since = 0.0
        self.retiring = False  # finishing its batch, then stopping (resize, limits)
        self.dropped = False  # killed on purpose: its death is not a crash
        self.gone = False
        self.start_error = ""  # the initializer's traceback, when it raised

    @property
    def label(self) -> str:
        return f"{self.name} (pid {self.pid})"

    def send(self, message: bytes) -> bool:
        try:
            send_message(self.outbox_fd, message)
        except OSError:
            return False
        return True

    def receive(self) -> bytearray:
        return receive_message(self.inbox_fd)

    def receive_remaining(self) -> list[bytearray]:
        """The whole messages still in the pipe of a worker that has exited."""
        messages = []
        while select.select([self.inbox_fd], [], [], 0)[0]:
            try:
                messages.append(receive_message(self.inbox_fd))
            except (EOFError, OSError):
                break
        return messages

    def read_stderr(self, forward: bool = True) -> bool:
        """Read what is available; forward it to our stderr. False at end of file."""
        while True:
            try:
                data = os.read(self.stderr_fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            if forward:
                try:
                    os.write(2, data)
                except OSError:
                    pass
            self.stderr_tail += data
            if len(self.stderr_tail) > STDERR_TAIL_BYTES:
                del self.stderr_tail[: len(self.stderr_tail) - STDERR_TAIL_BYTES]

    def tail_text(self, max_lines: int = 40) -> str:
        lines = self.stderr_tail.decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-max_lines:])

    def kill(self) -> None:
        if self.process.returncode is None:
            kill_process_tree(self.pid)

    def reap(self, wait_s: float = 5.0) -> int | None:
        try:
            return self.process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.kill()
            try:
                return self.process.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                return None

    def close(self) -> None:
        for fd in (self.inbox_fd, self.outbox_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.process.stderr is not None:
            self.process.stderr.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
