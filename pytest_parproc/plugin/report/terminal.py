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


class BottomLine:
    """The status row of a terminal (or of what stands for one: ``--par-progress=bar``)."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file
        self.rows = 0
        self._fd: int | None
        try:
            self._fd = file.fileno()
        except (OSError, ValueError, AttributeError):
            self._fd = None

    def size(self) -> os.terminal_size:
        if self._fd is not None:
            try:
                return os.get_terminal_size(self._fd)
            except OSError:
                pass
        return shutil.get_terminal_size()

    def open(self) -> None:
        self.rows = max(2, self.size().lines)
        self._write(MAKE_ROOM + _region(self.rows - 1))

    def draw(self, text: str) -> None:
        size = self.size()
        prefix = ""
        rows = max(2, size.lines)
        if rows != self.rows:  # resized: the region follows, the old status row is cleared
            prefix = f"{SAVE}{ESC}[{self.rows};1H{CLEAR_ROW}{RESTORE}" if rows > self.rows else ""
            prefix += MAKE_ROOM + _region(rows - 1)
            self.rows = rows
        line = text[: max(0, size.columns - 1)]
        self._write(f"{prefix}{SAVE}{ESC}[{rows};1H{CLEAR_ROW}{line}{ESC}[0m{RESTORE}")

    def close(self) -> None:
        """The whole screen scrolls again, and the status row is empty."""
        self._write(f"{SAVE}{ESC}[r{RESTORE}{SAVE}{ESC}[{self.rows};1H{CLEAR_ROW}{RESTORE}")

    def _write(self, text: str) -> None:
        self.file.write(text)
        self.file.flush()


def _region(last_row: int) -> str:
    """Rows 1 to ``last_row`` scroll; setting it homes the cursor, so it is saved around."""
    return f"{SAVE}{ESC}[1;{last_row}r{RESTORE}"
