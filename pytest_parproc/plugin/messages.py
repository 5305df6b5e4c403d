"""What travels between the main process and its workers: plain, picklable value objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: A report as ``pytest_report_to_serializable`` makes it (where only pytest's own plugins
#: serialize reports, a plain ``TestReport`` travels as itself: ``pytest_internals.report_codec``).
SerializedReport = dict[str, Any]

#: A parametrized test by its place rather than its id: the node id without its ``[...]``
#: part, and the index of each parameter value in its ``parametrize`` list.
ParamKey = tuple[str, tuple[tuple[str, int], ...]]


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to build its own session like the main process's."""

    run_id: str
    run_dir: str
    args: tuple[str, ...]
    invocation_dir: str
    n_workers: int
    basetemp: str | None
    #: the main process's environment: tests see it as in a serial run (the engine sets
    #: thread limits such as OMP_NUM_THREADS for its workers, and its own variables)
    environment: tuple[tuple[str, str], ...] = ()
    #: --par-timeout: seconds a test may run before its worker dumps its stack and exits
    timeout_s: float | None = None
    #: the longest a worker may take to build its session (--par-start-timeout, or by default
    #: ten times what the main process took to start and collect, at least 60 s and at least
    #: --par-timeout's limit; see ``processes.verdict.start_limit``)
    start_limit_s: float | None = None
    #: --par-max-tasks-per-worker (tests) and --par-max-worker-memory (bytes): when a worker
    #: retires
    max_tasks_per_worker: int | None = None
    max_worker_memory: int | None = None
    #: workers may be forked from the main process (nothing in it makes that unsafe)
    fork: bool = False
    #: what other plugins' xdist support expects in ``config.workerinput`` (``compat``)
    worker_input: dict[str, Any] = field(default_factory=dict)
    #: dask workers (which may be on other machines) check these first: the rootdir, and each
    #: test module's and conftest's path under it with a digest of its content
    rootdir: str = ""
    files: tuple[tuple[str, str], ...] = ()
    #: workers are dask workers: each keeps its files on its own machine (``dask_rundir``)
    dask: bool = False
    #: workers tell what they run now, for the live progress (``rundir.RunningSlot``)
    live: bool = False


@dataclass(frozen=True)
class Unit:
    """Consecutive tests for one worker: ``(index in the main session's items, node id)``, and
    for each its parametrization key (None for a test that is not parametrized)."""

    items: tuple[tuple[int, str], ...]
    keys: tuple[ParamKey | None, ...] = ()


@dataclass(frozen=True)
class WarningRecord:
    """A warning raised while a test ran, enough to rebuild ``warnings.WarningMessage``."""

    message: str
    category_module: str
    category_name: str
    filename: str
    lineno: int
    line: str | None
    nodeid: str


@dataclass
class ItemRecord:
    """The reports of one test, in the order pytest produced them."""

    index: int
    reports: list[SerializedReport] = field(default_factory=list)
    warnings: list[WarningRecord] = field(default_factory=list)
    #: the protocol ran to its end (False when pytest.exit or KeyboardInterrupt cut it short)
    complete: bool = False


@dataclass(frozen=True)
class StopRequest:
    """A test asked the whole run to stop: ``pytest.exit`` or KeyboardInterrupt."""

    kind: str  # "exit" or "interrupt"
    message: str
    returncode: int | None = None


@dataclass
class TaskResult:
    """What one task (a unit, or the end of a round) brings back from a worker."""

    worker_id: str
    pid: int
    records: list[ItemRecord] = field(default_factory=list)
    #: the last test of the unit, kept to run first in this worker's next task, once its
    #: ``nextitem`` is known (pytest tears fixtures down according to ``nextitem``)
    held: int | None = None
    #: tests the worker's own collection does not have (different parametrization ids)
    missing: list[int] = field(default_factory=list)
    busy_s: float = 0.0
    #: when the worker built its session in this task: how long that took, and when it ended
    startup_s: float | None = None
    ready_at: float | None = None
    #: when this worker process started (``time.time()`` scale), for the start-up column
    process_started_at: float | None = None
    #: whether that session was the main process's, inherited through fork (see ``inherit``)
    inherited: bool = False
    stop: StopRequest | None = None
    #: why the worker's session wants the run to stop (a test or plugin set shouldstop)
    shouldstop: str | None = None
    #: the traceback of an error that kept the worker from building its session (a conftest
    #: or plugin that fails there, not in the main process)
    session_error: str | None = None
    #: tests of the unit the worker hands back, not run: it retired (a --par-max-* limit)
    returned: list[int] = field(default_factory=list)
    #: set by the task that ends a worker's session
    finished: bool = False
    #: what the worker's plugins put in ``config.workeroutput`` (xdist's convention), sent
    #: with the task that ends its session
    worker_output: dict[str, Any] | None = None
    finish_error: str | None = None
    #: where the worker runs, when that is not told by its pid alone (a dask worker's address)
    address: str = ""
