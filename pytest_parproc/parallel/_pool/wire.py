"""Length-prefixed messages over a pipe: the only framing the pool and its workers share.

Plain ``os`` calls, so a worker process needs no ``multiprocessing`` import to talk.
"""

from __future__ import annotations

import os
import struct

_HEADER = struct.Struct("!Q")


def send_message(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write one message; raises ``OSError`` (``BrokenPipeError``) if the reader is gone."""
    header = _HEADER.pack(len(data))
    view = memoryview(data)
    written = os.writev(fd, [header, view])
    if written == len(header) + len(view):
        return
    # A pipe takes at most its buffer at once: finish the rest in plain writes.
    pending = memoryview(header + bytes(view))[written:]
    while pending:
        pending = pending[os.write(fd, pending) :]


def _read_exactly(fd: int, size: int) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = os.readv(fd, [view[received:]])
        if count == 0:
            raise EOFError("the other end of the pipe is closed")
        received += count
    return buffer


def receive_message(fd: int) -> bytearray:
    """Read one whole message; ``EOFError`` when the writer has closed its end."""
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    return _read_exactly(fd, size)
