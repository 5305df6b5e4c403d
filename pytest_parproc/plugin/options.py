"""The plugin's options: declared once, resolved once (command line, environment, ini file,
default) into a frozen object, with usage errors that name where a bad value came from."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Setting:
    """One option: its command-line flag, ini key and environment variable. ``numeric``: a
    TOML configuration may give it as a number (``n_jobs = 4``) as well as a string."""

    flag: str
    ini: str
    env: str
    help: str
    metavar: str
    numeric: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


N_JOBS = Setting(
    "--n-jobs",
    "n_jobs",
    "PYTEST_PARPROC_N_JOBS",
    "number of workers: N, -1 for every CPU, -2 for all but one, ... or 'auto' (every CPU). "
    "Unset or 1: tests run as usual, in this process.",
    metavar="N",
    numeric=True,
)
BACKEND = Setting(
    "--par-backend",
    "par_backend",
    "PYTEST_PARPROC_BACKEND",
    "engine backend that runs the tests: loky (default), multiprocessing, threading (tests "
    "at the same time in threads of this process), sequential (no distribution), dask (a "
    "dask.distributed cluster: see --par-scheduler), or a process backend registered with "
    "register_parallel_backend.",
    metavar="NAME",
)
MAX_WORKER_RESTART = Setting(
    "--par-max-worker-restart",
    "par_max_worker_restart",
    "PYTEST_PARPROC_MAX_WORKER_RESTART",
    "how many crashed workers may be replaced before the run stops (0: stop at the first "
    "crash). Default: 4 per worker.",
    metavar="K",
    numeric=True,
)
#: The least time a worker gets to build its session, unless --par-start-timeout says otherwise.
DEFAULT_START_LIMIT_S = 60.0
START = Setting(
    "--par-start",
    "par_start",
    "PYTEST_PARPROC_START",
    "how process workers get the collected tests: fork (default: workers are forked from this "
    "process after collection and take its session over, where that is safe: POSIX, no other "
    "thread) or collect (each worker starts a new interpreter and collects).",
    metavar="HOW",
)
DIST = Setting(
    "--par-dist",
    "par_dist",
    "PYTEST_PARPROC_DIST",
    "how tests are cut into units of work: auto (default: a module's or class's tests stay "
    "together unless that hurts the balance), load (single tests), loadscope (each class or "
    "module whole), loadfile (each module whole), loadgroup (the tests of a "
    "parproc_group(name) mark together, in order; the others as with load).",
    metavar="MODE",
)
TIMEOUT = Setting(
    "--par-timeout",
    "par_timeout",
    "PYTEST_PARPROC_TIMEOUT",
    "seconds a test (setup, call and teardown) may run in a process worker: past that, the "
    "worker's Python stack is dumped, the worker and every process it started are killed, the "
    "test fails, and a fresh worker goes on. Unset: no limit.",
    metavar="SECONDS",
    numeric=True,
)
START_TIMEOUT = Setting(
    "--par-start-timeout",
    "par_start_timeout",
    "PYTEST_PARPROC_START_TIMEOUT",
    "seconds a worker process may take to build its session (start, configure, import and "
    "collect, for a worker that collects for itself) before it is stopped and reported. "
    f"Default: ten times this process's own start-up and collection, and at least "
    f"{DEFAULT_START_LIMIT_S:g} s (or --par-timeout's limit, if that is more).",
    metavar="SECONDS",
    numeric=True,
)
MAX_TASKS = Setting(
    "--par-max-tasks-per-worker",
    "par_max_tasks_per_worker",
    "PYTEST_PARPROC_MAX_TASKS_PER_WORKER",
    "tests a worker process runs before it ends its session and a fresh worker takes over "
    "(for suites that leak). loky only. Unset: no limit.",
    metavar="N",
    numeric=True,
)
MAX_MEMORY = Setting(
    "--par-max-worker-memory",
    "par_max_worker_memory",
    "PYTEST_PARPROC_MAX_WORKER_MEMORY",
    "resident memory (bytes, or with K, M, G) past which a worker process, after its current "
    "test, ends its session and a fresh worker takes over. loky only. Unset: no limit.",
    metavar="SIZE",
)
SCHEDULER = Setting(
    "--par-scheduler",
    "par_scheduler",
    "PYTEST_PARPROC_SCHEDULER",
    "with --par-backend=dask: the address of an existing dask scheduler (tcp://host:8786); "
    "--n-jobs then caps how many of its workers run tests (-1: all). Unset: a LocalCluster "
    "of --n-jobs single-threaded workers on 127.0.0.1, for the run.",
    metavar="ADDRESS",
)
THREAD_CONCURRENCY = Setting(
    "--par-thread-concurrency",
    "par_thread_concurrency",
    "PYTEST_PARPROC_THREAD_CONCURRENCY",
    "with --par-backend=threading, how many tests run at once: adaptive (default: --n-jobs, "
    "and one at a time while the tests keep the interpreter busy, where more only adds cost) "
    "or full (always --n-jobs, as a thread-safety check wants).",
    metavar="MODE",
)
SETTINGS = (
    N_JOBS,
    BACKEND,
    MAX_WORKER_RESTART,
    START,
    DIST,
    TIMEOUT,
    START_TIMEOUT,
    MAX_TASKS,
    MAX_MEMORY,
    SCHEDULER,
    THREAD_CONCURRENCY,
)
START_MODES = ("fork", "collect")
DIST_MODES = ("auto", "load", "loadscope", "loadfile", "loadgroup")
THREAD_CONCURRENCY_MODES = ("adaptive", "full")

#: "sequential" means no distribution at all.
SERIAL_BACKENDS = ("sequential",)
#: The backend whose tests share this process (threads).
THREADING = "threading"


@dataclass(frozen=True)
class ParprocOptions:
    """The resolved options. ``n_jobs`` is a worker count (1: the plugin stays out of the way)."""

    n_jobs: int
    backend: str
    max_worker_restart: int
    sources: dict[str, str]
    start: str = "fork"
    dist: str = "auto"
    timeout_s: float | None = None
    start_timeout_s: float | None = None
    #: --par-max-tasks-per-worker: a task is one test here (the name follows multiprocessing's
    #: ``maxtasksperchild``)
    max_tasks_per_worker: int | None = None
    max_worker_memory: int | None = None
    #: --par-scheduler (dask), and --n-jobs as given (negative: counted from the cluster's
    #: workers, where there is a cluster)
    scheduler: str | None = None
    requested_jobs: int = 0
    #: --par-thread-concurrency (``threads.admission``)
    thread_concurrency: str = "adaptive"

    @property
    def active(self) -> bool:
        return self.n_jobs > 1 and self.backend not in SERIAL_BACKENDS


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("parproc", "parallel test runs (pytest-parproc)")
    for setting in SETTINGS:
        help_text = f"{setting.help} [ini: {setting.ini}; env: {setting.env}]"
        group.addoption(
            setting.flag, dest=setting.dest, default=None, metavar=setting.metavar, help=help_text
        )
        add_ini(parser, setting)


def add_ini(parser: pytest.Parser, setting: Setting) -> None:
    if setting.numeric:
        # pytest 9 reads TOML natively and checks value types: ``n_jobs = 4`` needs ``int``
        # accepted beside ``str`` ("auto"). Older pytest knows no such union and says so.
        try:
            parser.addini(setting.ini, setting.help, type=int | str, default=None)  # type: ignore[arg-type, unused-ignore]
            return
        except (ValueError, TypeError, AssertionError):
            pass
    parser.addini(setting.ini, setting.help, default=None)


def lookup(config: pytest.Config, setting: Setting) -> tuple[str, str] | None:
    """The raw value and a description of where it came from, by precedence."""
    value = config.getoption(setting.dest)
    if value is not None:
        return str(value), f"option {setting.flag}"
    value = os.environ.get(setting.env, "")
    if value.strip():
        return value, f"environment variable {setting.env}"
    value = config.getini(setting.ini)
    if value is not None and str(value).strip() != "":
        where = f" in {config.inipath}" if config.inipath else ""
        return str(value), f"ini option {setting.ini}{where}"
    return None


def _parse_int(raw: str, source: str, what: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise pytest.UsageError(f"{source}: {what}, got {raw!r}") from None


def parse_n_jobs(raw: str, source: str) -> int:
    from ..parallel import cpu_count

    text = raw.strip().lower()
    if text == "auto":
        return cpu_count()
    expected = "expected an integer (N, -1 for every CPU, -2 for all but one, ...) or 'auto'"
    n_jobs = _parse_int(raw, source, expected)
    if n_jobs == 0:
        raise pytest.UsageError(f"{source}: n_jobs=0 is not allowed; {expected}")
    return n_jobs if n_jobs > 0 else max(1, cpu_count() + 1 + n_jobs)


def check_backend(name: str, source: str) -> None:
    from ..parallel import Parallel

    if name == "dask":
        # (its instance needs a cluster: the run starts one, or connects to --par-scheduler;
        # dask is not imported yet, see ``dask_cluster.EarlyStart``)
        from ..parallel.backends.dask_tasks import MISSING, distributed_installed

        if not distributed_installed():
            raise pytest.UsageError(f"{source}: {MISSING}")
        return
    try:
        backend = Parallel(n_jobs=2, backend=name).backend
    except (ValueError, TypeError) as error:
        raise pytest.UsageError(f"{source}: {error}") from None
    if not backend.uses_processes and name not in (*SERIAL_BACKENDS, THREADING):
        raise pytest.UsageError(
            f"{source}: backend {name!r} runs tasks in threads of its own; the plugin runs "
            "tests on process backends (loky, multiprocessing), on its own threading backend "
            "(threading) or serially (sequential)"
        )


def resolve(config: pytest.Config) -> ParprocOptions:
    sources: dict[str, str] = {}
    n_jobs, backend, max_restart = 1, "loky", None
    found = found_jobs = lookup(config, N_JOBS)
    if found is not None:
        sources["n_jobs"] = found[1]
        n_jobs = parse_n_jobs(*found)
    found = lookup(config, BACKEND)
    if found is not None:
        sources["backend"] = found[1]
        backend = found[0].strip()
        check_backend(backend, found[1])
    found = lookup(config, MAX_WORKER_RESTART)
    if found is not None:
        sources["max_worker_restart"] = found[1]
        expected = "expected a whole number of restarts (0 or more)"
        max_restart = _parse_int(found[0], found[1], expected)
        if max_restart < 0:
            raise pytest.UsageError(f"{found[1]}: {expected}, got {found[0]!r}")
    requested = n_jobs
    if found_jobs is not None and found_jobs[0].strip().lstrip("-").isdigit():
        requested = int(found_jobs[0])
    options = ParprocOptions(
        n_jobs=n_jobs,
        backend=backend,
        max_worker_restart=4 * n_jobs if max_restart is None else max_restart,
        sources=sources,
        start=choice(config, START, START_MODES, sources, "start"),
        dist=choice(config, DIST, DIST_MODES, sources, "dist"),
        timeout_s=seconds(config, TIMEOUT, sources, "timeout"),
        start_timeout_s=seconds(config, START_TIMEOUT, sources, "start_timeout"),
        max_tasks_per_worker=_max_tasks(config, sources),
        max_worker_memory=_max_memory(config, sources),
        scheduler=_scheduler(config, sources),
        requested_jobs=requested,
        thread_concurrency=choice(
            config, THREAD_CONCURRENCY, THREAD_CONCURRENCY_MODES, sources, "thread_concurrency"
        ),
    )
    _check_dask(options)
    return options


def _scheduler(config: pytest.Config, sources: dict[str, str]) -> str | None:
    from .dask_options import parse_address

    found = lookup(config, SCHEDULER)
    if found is None:
        return None
    sources["scheduler"] = found[1]
    return parse_address(*found)


def _check_dask(options: ParprocOptions) -> None:
    from .dask_options import check_options

    recycling = {"max_tasks_per_worker": MAX_TASKS.flag, "max_worker_memory": MAX_MEMORY.flag}
    check_options(options.backend, options.scheduler, options.sources, recycling)


def _max_tasks(config: pytest.Config, sources: dict[str, str]) -> int | None:
    found = lookup(config, MAX_TASKS)
    if found is None:
        return None
    sources["max_tasks_per_worker"] = found[1]
    expected = "expected a whole number of tests, 1 or more"
    count = _parse_int(found[0], found[1], expected)
    if count < 1:
        raise pytest.UsageError(f"{found[1]}: {expected}, got {found[0]!r}")
    return count


def _max_memory(config: pytest.Config, sources: dict[str, str]) -> int | None:
    from ..parallel.memmap import parse_nbytes

    found = lookup(config, MAX_MEMORY)
    if found is None:
        return None
    sources["max_worker_memory"] = found[1]
    try:
        size = parse_nbytes(found[0])
    except ValueError:
        size = None
    if not size:
        raise pytest.UsageError(
            f"{found[1]}: expected a size above 0 in bytes, or with K, M or G (500M), "
            f"got {found[0]!r}"
        )
    return size


def seconds(
    config: pytest.Config, setting: Setting, sources: dict[str, str], name: str
) -> float | None:
    found = lookup(config, setting)
    if found is None:
        return None
    raw, source = found
    sources[name] = source
    expected = "expected a number of seconds greater than 0"
    try:
        value = float(raw.strip())
    except ValueError:
        raise pytest.UsageError(f"{source}: {expected}, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise pytest.UsageError(f"{source}: {expected}, got {raw!r}")
    return value


def choice(
    config: pytest.Config,
    setting: Setting,
    choices: tuple[str, ...],
    sources: dict[str, str],
    name: str,
) -> str:
    found = lookup(config, setting)
    if found is None:
        return choices[0]
    sources[name] = found[1]
    value = found[0].strip().lower()
    if value not in choices:
        raise pytest.UsageError(
            f"{found[1]}: expected one of {', '.join(choices)}, got {found[0]!r}"
        )
    return value
