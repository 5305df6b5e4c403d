"""Where a nested ``Parallel`` call falls back to when it runs inside a worker, and how many
jobs a process backend may take there (joblib's rules)."""

from __future__ import annotations

import contextvars
import warnings

# Not ``typing`` or ``contextlib``: a worker process imports this module before its first task,
# and those would add milliseconds to its start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType


class Nesting:
    """Set inside workers, as joblib does: the backend a nested call naming no backend uses
    (threads inside process workers and at the first level of threads, then plain loops), its
    nesting level, and what runs the current task: ``"loky"``, ``"multiprocessing"``,
    ``"threads"`` or ``"dask"``."""

    __slots__ = ("backend", "inside", "level")

    def __init__(self, backend: str, level: int, inside: str) -> None:
        self.backend, self.level, self.inside = backend, level, inside


# Kept in a module of its own so a worker process can set it without importing the rest of
# the engine.
_nested: contextvars.ContextVar[Nesting | None] = contextvars.ContextVar(
    "pytest_parproc_nested", default=None
)


def nested_fallback() -> tuple[str, int] | None:
    nesting = _nested.get()
    return None if nesting is None else (nesting.backend, nesting.level)


def set_nested_fallback(
    backend_name: str, level: int, inside: str = "threads"
) -> contextvars.Token[Nesting | None]:
    """Called by a worker (thread or process) before it runs tasks."""
    return _nested.set(Nesting(backend_name, level, inside))


def reset_nested_fallback(token: contextvars.Token[Nesting | None]) -> None:
    _nested.reset(token)


def thread_fallback(parent_level: int | None) -> str:
    """What a call naming no backend uses inside a thread worker: threads at the first level,
    then plain loops (joblib's ``get_nested_backend``)."""
    return "threading" if (parent_level or 0) + 1 <= 1 else "sequential"


class as_in_tests:  # (lower case: used as a function, ``with as_in_tests():``)
    """Run the plugin's tests at the top level, as a serial run does: a test's own calls get
    no fallback, no nesting level and no nesting warning from the worker that runs it."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _nested.set(None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _nested.reset(self._token)


#: joblib's warnings, word for word, by (backend, what runs the call): a user's filter or
#: ``pytest.warns(match=...)`` may depend on them.
_ONE_JOB = {
    ("multiprocessing", "multiprocessing"): (
        "Multiprocessing-backed parallel loops cannot be nested, setting n_jobs=1"
    ),
    ("multiprocessing", "loky"): (
        "Multiprocessing-backed parallel loops cannot be nested, below loky, setting n_jobs=1"
    ),
    ("multiprocessing", "threads"): (
        "Multiprocessing-backed parallel loops cannot be nested below threads, setting n_jobs=1"
    ),
    ("loky", "multiprocessing"): (
        "Loky-backed parallel loops cannot be called in a multiprocessing, setting n_jobs=1"
    ),
    (
        "loky",
        "threads",
    ): "Loky-backed parallel loops cannot be nested below threads, setting n_jobs=1",
}


def nested_process_jobs(backend: str, n_jobs: int) -> int:
    """``n_jobs`` for a process backend called here: 1, with joblib's warning, where joblib
    reduces such a call (multiprocessing inside any worker; loky inside a multiprocessing
    worker or a thread); ``n_jobs`` elsewhere (loky inside loky starts a nested pool)."""
    nesting = _nested.get()
    if nesting is None or n_jobs == 1:
        return n_jobs
    message = _ONE_JOB.get((backend, nesting.inside))
    if message is None:
        return n_jobs
    warnings.warn(message, UserWarning, stacklevel=4)
    return 1
