"""The engine's exceptions: one root, each carrying the data that explains it."""

from __future__ import annotations

import multiprocessing
import pickle
import signal


class ParallelError(Exception):
    """Root of every error the engine raises on its own account."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, chained as ``__cause__``.

    The original exception is re-raised in the caller with its own type; this object holds the
    worker-side traceback text so it is printed above the caller's traceback, the way
    ``concurrent.futures.ProcessPoolExecutor`` does it.
    """

    def __init__(self, traceback_text: str) -> None:
        super().__init__(traceback_text)
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return "\n" + self.traceback_text


class WorkerCrashedError(ParallelError):
    """A worker process died while it was running a task.

    ``exitcode`` is the process's exit status (negative: killed by signal ``-exitcode``),
    ``stderr_tail`` the last bytes it wrote to its standard error (the faulthandler traceback of
    a fatal signal lands there), ``task`` a short description of the task that was running,
    ``ended`` how it ended where no exit code is known (a dask worker on another machine).
    """

    def __init__(
        self,
        *,
        exitcode: int | None,
        pid: int | None,
        worker: str = "",
        task: str = "",
        stderr_tail: str = "",
        ended: str = "",
    ) -> None:
        self.exitcode = exitcode
        self.pid = pid
        self.worker = worker
        self.task = task
        self.stderr_tail = stderr_tail
        self.ended = ended
        super().__init__(self._message())

    @property
    def signal_name(self) -> str | None:
        """The name of the signal that killed the worker, or None for a plain exit."""
        if self.exitcode is None or self.exitcode >= 0:
            return None
        try:
            return signal.Signals(-self.exitcode).name
        except ValueError:
            return f"signal {-self.exitcode}"

    @property
    def how_it_ended(self) -> str:
        """``was killed by SIGSEGV (exit code -11)``, ``exited unexpectedly with exit code 3``,
        and what else the backend knows (``ended``: a dask worker left the cluster)."""
        code = ""
        if self.signal_name is not None:
            code = f"was killed by {self.signal_name} (exit code {self.exitcode})"
        elif self.exitcode is not None:
            code = f"exited unexpectedly with exit code {self.exitcode}"
        ended = getattr(self, "ended", "")
        if code and ended:
            return f"{code} and {ended}"
        return code or ended or "stopped answering"

    def _message(self) -> str:
        who = f"worker {self.worker} (pid {self.pid})" if self.worker else f"worker pid {self.pid}"
        text = f"A {who} {self.how_it_ended}"
        if self.task:
            text += f" while running {self.task}"
        text += "."
        if self.stderr_tail:
            text += "\n--- last lines the worker wrote to stderr ---\n" + self.stderr_tail.rstrip()
        return text

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_crash, (self.__dict__.copy(),))


def _rebuild_crash(state: dict[str, object]) -> WorkerCrashedError:
    error = WorkerCrashedError.__new__(WorkerCrashedError)
    error.__dict__.update(state)
    Exception.__init__(error, error._message())
    return error


#: joblib's name for the same condition, kept for code written against joblib.
TerminatedWorkerError = WorkerCrashedError


class TaskTimeoutError(ParallelError, multiprocessing.TimeoutError, TimeoutError):
    """A task ran longer than the ``timeout`` given to ``Parallel``.

    Also a ``multiprocessing.TimeoutError`` (what joblib raises) and a builtin
    ``TimeoutError``, so ``except`` clauses written for either catch it."""

    def __init__(self, timeout_s: float, task: str = "", detail: str = "") -> None:
        self.timeout_s = timeout_s
        self.task = task
        self.detail = detail
        message = f"{task or 'A task'} did not finish within the timeout of {timeout_s:g} s"
        if detail:
            message += "\n" + detail
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (TaskTimeoutError, (self.timeout_s, self.task, self.detail))


class WorkerStartError(ParallelError):
    """A worker could not start: its initializer raised, or the process failed to boot."""


class UnpicklableTaskError(ParallelError, pickle.PicklingError):
    """A task (function or argument) or its result could not be serialized for a worker.

    Also a ``pickle.PicklingError``, what joblib raises there."""
