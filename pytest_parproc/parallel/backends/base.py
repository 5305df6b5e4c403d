"""The backend contract: what ``Parallel`` asks of every way of running batches of tasks."""

from __future__ import annotations

import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: One task, as ``delayed(function)(*args, **kwargs)`` builds it.
Task = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class Batch:
    """A run of consecutive tasks of one ``Parallel`` call, sent to a worker as one unit.

    ``call_id`` names the call (a backend serving several calls at once may group by it),
    ``first_index`` is the position of the first task in the call's input, ``key`` is unique.

    ``task_started_at`` is the ``time.monotonic()`` at which the task now running started, set
    by backends that can tell (``reports_task_start``); ``Parallel`` uses it for timeouts.
    """

    __slots__ = (
        "call_id",
        "first_index",
        "key",
        "running_offset",
        "task_started_at",
        "tasks",
    )

    _keys = itertools.count()

    def __init__(self, call_id: int, first_index: int, tasks: list[Task]) -> None:
        # A unique key, never ``id(batch)``: ids are reused as soon as a batch is freed, and a
        # late cancellation must not hit a new batch that took the old one's address.
        self.key = next(Batch._keys)
        self.call_id = call_id
        self.first_index = first_index
        self.tasks = tasks
        self.task_started_at: float | None = None
        self.running_offset = 0  # which task of the batch runs now, where the backend can tell

    def __len__(self) -> int:
        return len(self.tasks)

    def mark_started(self) -> None:
        self.mark_task_started(0)

    def mark_task_started(self, offset: int) -> None:
        self.running_offset = offset
        self.task_started_at = time.monotonic()

    def describe(self, offset: int = 0) -> str:
        """Name the task at ``offset`` the way error messages do: function and call index."""
        function = self.tasks[offset][0] if offset < len(self.tasks) else None
        return describe_task(self.first_index + offset, function)


def describe_task(index: int, function: object) -> str:
    """``task 3 (square)``; objects without a ``__qualname__`` (a partial) show their repr."""
    name = getattr(function, "__qualname__", None) or repr(function)
    return f"task {index} ({name})"


#: Turns a serialized outcome back into (values, error, duration_s).
OutcomeDecoder = Callable[[bytes | memoryview], tuple[list[Any], BaseException | None, float]]


@dataclass
class BatchOutcome:
    """What came back for a batch: the values of the tasks that finished, then at most one error.

    ``error`` belongs to the task at index ``len(values)`` of the batch; tasks after it did not
    run. ``duration_s`` is the time the worker spent running the batch (for auto batching).
    ``payload`` holds the serialized values and error when they came from another process;
    ``resolve()`` decodes it in the thread that consumes results, not in the backend's thread.
    """

    values: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    duration_s: float = 0.0
    worker: str = ""
    payload: bytes | memoryview | None = None
    decoder: OutcomeDecoder | None = None

    def resolve(self) -> BatchOutcome:
        if self.payload is not None and self.decoder is not None:
            self.values, self.error, self.duration_s = self.decoder(self.payload)
            self.payload = None
        return self


#: The callback a backend calls (from any thread) when a batch is done.
DoneCallback = Callable[[Batch, BatchOutcome], None]


@dataclass(frozen=True)
class CallOptions:
    """What one ``Parallel`` call tells its backend when it starts it."""

    timeout_s: float | None = None
    crash_policy: str = "abort"
    temp_folder: str | None = None
    max_nbytes: int | str | None = "1M"
    mmap_mode: str | None = "r"
    inner_max_num_threads: int | None = None
    verbose: int = 0


class ParallelBackendBase(ABC):
    """One way of running batches. Subclass it and register it with ``register_parallel_backend``.

    Capability flags (class attributes) tell ``Parallel`` what the backend can do, so the engine
    never tests for a concrete backend class:

    - ``supports_sharedmem``: tasks run in the caller's process and see its objects.
    - ``uses_processes``: tasks and results are serialized (memmapping of large arrays applies).
    - ``can_stop_running_tasks``: ``abort`` stops tasks that are running, not only queued ones.
    - ``reports_task_start``: the backend keeps ``Batch.task_started_at`` current.
    - ``isolates_crashes``: a worker death is reported for the one task that was running.
    - ``supports_inner_max_num_threads``: ``inner_max_num_threads`` sizes the workers' thread
      pools (OpenMP, BLAS); elsewhere ``parallel_config`` refuses it, as joblib does.
    """

    name: ClassVar[str] = "base"
    supports_sharedmem: ClassVar[bool] = False
    uses_processes: ClassVar[bool] = False
    can_stop_running_tasks: ClassVar[bool] = False
    reports_task_start: ClassVar[bool] = False
    isolates_crashes: ClassVar[bool] = False
    supports_inner_max_num_threads: ClassVar[bool] = False

    def __init__(self, nesting_level: int | None = None, **backend_params: Any) -> None:
        if backend_params:
            unknown = ", ".join(sorted(backend_params))
            raise TypeError(f"backend {self.name!r} got unexpected parameters: {unknown}")
        self.nesting_level = nesting_level
        self.n_jobs = 1

    #: What ``n_jobs=None`` means where no ``parallel_config`` gives a value (joblib's
    #: ``default_n_jobs``: -1, all of a cluster's workers, for dask).
    default_n_jobs: ClassVar[int] = 1

    def available_cpus(self) -> int | None:
        """What ``n_jobs=-1`` counts from: None for this machine's CPUs (``cpu_count()``)."""
        return None

    def effective_n_jobs(self, n_jobs: int) -> int:
        """The number of workers this backend would use for a resolved, positive ``n_jobs``."""
        return max(1, n_jobs)

    @abstractmethod
    def start(self, n_jobs: int, options: CallOptions) -> int:
        """Get ready to run batches on ``n_jobs`` workers; return the number actually used."""

    @abstractmethod
    def submit(self, batch: Batch, on_done: DoneCallback) -> None:
        """Queue ``batch``; call ``on_done(batch, outcome)`` exactly once, from any thread.

        Every failure, a crashed worker included, arrives through ``on_done`` as
        ``outcome.error``; ``submit`` itself raises only for a problem with the batch it was
        handed (a task that cannot be serialized).
        """

    @abstractmethod
    def abort(self, batches: Sequence[Batch]) -> None:
        """Drop ``batches`` that have not started; stop running ones where the backend can.

        ``on_done`` is not called for batches aborted this way.
        """

    def stop(self) -> None:  # noqa: B027 - optional: most backends have nothing to release
        """End of a call (or of a ``with Parallel`` block): release what is not reused."""
