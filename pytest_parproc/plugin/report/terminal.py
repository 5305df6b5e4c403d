"""A status line kept on the terminal's last row while everything else scrolls above it.

The rows above become the scrolling region (DECSTBM, as apt's progress bar does), so output
from anywhere (pytest's dots and ``-v`` lines, a worker's ``-s`` output on the same terminal)
scrolls there and never reaches the status row. Each drawing saves the cursor (DECSC), writes
the last row and puts the cursor back (DECRC), in one write: it can come between any two
writes of the others and changes nothing of theirs."""

from __future__ import annotations

import os
import shutil
from typing import IO

ESC = "\x1b"
SAVE, RESTORE = f"{ESC}7", f"{ESC}8"
#: IND then RI: the row below the cursor exists (the screen scrolls if the cursor is on the last
#: row), and the cursor is back over the same text, in the same column
MAKE_ROOM = f"{ESC}D{ESC}M"
CLEAR_ROW = f"{ESC}[2K"
#: the smallest terminal with room for a status row below the lines that scroll
MIN_ROWS, MIN_COLUMNS = 3, 20


class DirectOutput:
    """The terminal itself, beside pytest's file object for it: a duplicate of its descriptor,
    taken while nothing captures it. While a test runs in this process, pytest's capture may
    point descriptor 1 at a file of its own: a status line drawn then must not end up in that
    test's captured output."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file
        self.encoding = getattr(file, "encoding", None) or "utf-8"
        self.fd: int | None
        try:
            self.fd = os.dup(file.fileno())
        except (OSError, ValueError, AttributeError):  # (a file of Python's only: no capture)
            self.fd = None

    def write(self, text: str) -> None:
        if self.fd is None:
            self.file.write(text)
            self.file.flush()
            return
        data = text.encode(self.encoding, errors="replace")
        while data:
            data = data[os.write(self.fd, data) :]

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class BottomLine:
    """The status row of a terminal (or of what stands for one: ``--par-progress=bar``)."""

    def __init__(self, out: DirectOutput) -> None:
        self.out = out
        self.file = out.file
        self.rows = 0
        self._fd = out.fd

    def measured(self) -> os.terminal_size | None:
        """The terminal's own size; None where it tells none (a pseudo-terminal nobody sized
        says 0 x 0) or one too small for a status row under the rest."""
        if self._fd is None:
            return None
        try:
            size = os.get_terminal_size(self._fd)
        except OSError:
            return None
        return size if size.lines >= MIN_ROWS and size.columns >= MIN_COLUMNS else None

    def size(self) -> os.terminal_size:
        """The size to draw for: the terminal's own, else pytest's fallback (COLUMNS and LINES,
        else 80 x 24)."""
        return self.measured() or shutil.get_terminal_size()

    def open(self) -> None:
        """Called by the main thread: what pytest wrote comes first (the room is made where
        its cursor is)."""
        self.file.flush()
        self.rows = max(MIN_ROWS, self.size().lines)
        self._write(MAKE_ROOM + _region(self.rows - 1))

    def draw(self, text: str) -> None:
        size = self.size()
        prefix = ""
        rows = max(MIN_ROWS, size.lines)
        if rows != self.rows:  # resized: the region follows, the old status row is cleared
            prefix = f"{SAVE}{ESC}[{self.rows};1H{CLEAR_ROW}{RESTORE}" if rows > self.rows else ""
            prefix += MAKE_ROOM + _region(rows - 1)
            self.rows = rows
        line = text[: max(0, size.columns - 1)]
        self._write(f"{prefix}{SAVE}{ESC}[{rows};1H{CLEAR_ROW}{line}{ESC}[0m{RESTORE}")

    def close(self) -> None:
        """The whole screen scrolls again, and the status row is empty (by the main thread)."""
        self.file.flush()
        self._write(f"{SAVE}{ESC}[r{RESTORE}{SAVE}{ESC}[{self.rows};1H{CLEAR_ROW}{RESTORE}")

    def _write(self, text: str) -> None:
        # Each drawing is one write, position-independent: it may come between any two of
        # pytest's (which may wait in its file's buffer meanwhile).
        self.out.write(text)


def _region(last_row: int) -> str:
    """Rows 1 to ``last_row`` scroll; setting it homes the cursor, so it is saved around."""
    return f"{SAVE}{ESC}[1;{last_row}r{RESTORE}"
