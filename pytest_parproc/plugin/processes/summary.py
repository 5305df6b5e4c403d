"""What a process run adds to the summary: workers that could not build their session, and
deaths outside any test."""

from __future__ import annotations

from typing import Any


def write_session_errors(writer: Any, session_errors: list[tuple[str, str]]) -> None:
    for worker_id, text in session_errors[:1]:  # the others' are the same, or alike
        others = len(session_errors) - 1
        more = f" (and {others} other worker{'s' if others > 1 else ''})" if others else ""
        writer.write_sep("-", f"parproc: worker {worker_id}{more} could not build its session")
        writer.write_line(
            "It fails in the worker, not in the main process (a conftest or plugin that "
            "depends on the process it runs in?):"
        )
        writer.write_line(text.rstrip())


def write_crash_notes(writer: Any, crash_notes: list[str]) -> None:
    for text in crash_notes:
        writer.write_sep("-", "parproc: a worker died outside of any test", red=True)
        writer.write_line(text.rstrip())
