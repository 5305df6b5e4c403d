"""Private pytest names that the live progress needs: the file behind pytest's terminal.
``tests/plugin/test_pytest_internals.py`` checks each."""

from __future__ import annotations

from typing import IO

import pytest


def terminal_file(config: pytest.Config) -> IO[str] | None:
    """The file pytest's terminal writes to (``TerminalWriter._file``): the status line is
    written there, beside pytest's own output, and not through ``TerminalWriter.write``, which
    counts what it writes into the current line's width (pytest right-aligns its ``[ 40%]``
    with that count, so escape sequences would move it)."""
    try:
        writer = config.get_terminal_writer()
    except (AssertionError, AttributeError):  # no terminal reporter (-p no:terminal)
        return None
    file: IO[str] | None = getattr(writer, "_file", None)
    return file
