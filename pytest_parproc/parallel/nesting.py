"""Where a nested ``Parallel`` call falls back to when it runs inside a worker."""

from __future__ import annotations

import contextvars

# Set inside workers: (backend name, nesting level) that a nested call naming no backend uses,
# as joblib does: threads inside process workers, then plain loops. Kept in a module of its
# own so a worker process can set it without importing the rest of the engine.
_nested: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "pytest_parproc_nested", default=None
)


def nested_fallback() -> tuple[str, int] | None:
    return _nested.get()


def set_nested_fallback(backend_name: str, level: int) -> contextvars.Token[tuple[str, int] | None]:
    """Called by a worker (thread or process) before it runs tasks."""
    return _nested.set((backend_name, level))


def reset_nested_fallback(token: contextvars.Token[tuple[str, int] | None]) -> None:
    _nested.reset(token)
