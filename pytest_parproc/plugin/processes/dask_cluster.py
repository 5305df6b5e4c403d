"""The dask cluster of a run on ``--par-backend=dask``: a LocalCluster on 127.0.0.1 started for
the run, or an existing one (``--par-scheduler``); which of its workers run tests; what the
workers check before they build a session (the project's files)."""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ...parallel.backends.dask_tasks import Pinned
from .verdict import start_limit

#: The scheduler's own settings for a LocalCluster started here: a task whose worker dies is
#: not run again elsewhere (a crashing test would take a second worker down), and workers are
#: not daemonic processes (tests may start processes of their own, as in a serial run).
LOCAL_CONFIG = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.worker.daemon": False,
}
#: What the fork server imports before it forks the workers (see ``_start_method``).
PRELOAD = ["distributed", "pytest", "pytest_parproc.plugin.processes.worker"]


def _start_method() -> str:
    """Workers forked from a fork server that has imported dask, pytest and the worker's code
    once (a spawned worker imports them itself: a second each on a small machine), unless the
    fork server's socket would not fit the temporary folder's path (108 bytes on Linux: a long
    TMPDIR), where workers are spawned."""
    socket = os.path.join(tempfile.gettempdir(), "pymp-xxxxxxxx", "listener-xxxxxxxx")
    return "forkserver" if len(socket.encode()) < 100 else "spawn"


def _start_fork_server() -> None:
    """Start the fork server with our preload now, before this process imports dask (which
    takes a third of a second): the two imports run side by side. (dask sets a preload of its
    own when it first asks for the context; a fork server that runs already keeps ours.)"""
    import multiprocessing.forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
    multiprocessing.forkserver.ensure_running()


class DaskCluster:
    """The run's cluster and client; ``names``: the workers that run tests, each by what stays
    when its nanny restarts it (``_identity``)."""

    def __init__(self, address: str | None, n_jobs: int, source: str, limit_s: float) -> None:
        method = _start_method()
        if address is None and method == "forkserver":
            _start_fork_server()  # (running already where EarlyStart started it)
        try:
            self.distributed: Any = importlib.import_module("distributed")
            dask: Any = importlib.import_module("dask")
        except ImportError:
            raise pytest.UsageError(
                "--par-backend=dask needs dask.distributed, which is not installed: "
                "pip install 'pytest-parproc[dask]'"
            ) from None
        self.address = address
        self.cluster: Any = None
        self._config: Any = None
        if address is None:
            settings = {**LOCAL_CONFIG, "distributed.worker.multiprocessing-method": method}
            # For as long as the cluster lives, not only while it starts: a nanny that restarts
            # a worker (after a crash) reads them again.
            self._config = dask.config.set(settings)
            try:
                self.cluster = self.distributed.LocalCluster(
                    n_workers=n_jobs,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            except Exception as error:
                self._config.__exit__(None, None, None)
                raise pytest.UsageError(
                    f"{source}: could not start a dask LocalCluster of {n_jobs} workers: "
                    f"{type(error).__name__}: {error} (caused by {error.__cause__!r})"
                ) from None
            self.client = self.distributed.Client(self.cluster, set_as_default=False)
        else:
            started = time.monotonic()
            try:
                self.client = self.distributed.Client(
                    address, set_as_default=False, timeout=limit_s
                )
            except Exception as error:  # OSError, TimeoutError: what dask raises varies
                # (dask fails at once where it cannot even try: a TLS address without TLS
                # settings)
                waited_s = time.monotonic() - started
                waited = f" within {limit_s:g} s" if waited_s >= 0.9 * limit_s else ""
                raise pytest.UsageError(
                    f"{source}: could not reach the dask scheduler at {address!r}{waited}: "
                    f"{type(error).__name__}: {error}"
                ) from None
        try:
            self.names = self._choose(n_jobs, source, limit_s)
        except BaseException:
            self.close()
            raise

    def _choose(self, n_jobs: int, source: str, limit_s: float) -> list[Any]:
        try:
            self.client.wait_for_workers(1, timeout=limit_s)
        except Exception:
            raise pytest.UsageError(
                f"{source}: the dask cluster at {self.client.scheduler.address} has no worker "
                f"after {limit_s:g} s"
            ) from None
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        threaded = [
            f"{info.get('name', address)} ({info['nthreads']} threads)"
            for address, info in workers.items()
            if info.get("nthreads", 1) != 1
        ]
        if threaded:
            raise pytest.UsageError(
                f"{source}: dask workers with more than one thread would run tests in threads "
                f"that pytest does not expect: {', '.join(threaded)}; start workers with "
                "--nthreads 1"
            )
        pids = self.client.run(os.getpid)
        inside = [address for address, pid in pids.items() if pid == os.getpid()]
        if inside:
            raise pytest.UsageError(
                f"{source}: dask workers in this very process (LocalCluster(processes=False)?) "
                f"cannot run tests: {', '.join(inside)}"
            )
        names = sorted((_identity(address, info) for address, info in workers.items()), key=str)
        wanted = n_jobs if n_jobs > 0 else len(names) + 1 + n_jobs
        return names[: max(1, min(wanted, len(names)))]

    @classmethod
    def for_run(cls, options: Any, limit_s: float) -> DaskCluster:
        """The run's cluster: --par-scheduler's, or a LocalCluster started for the run; a usage
        error (exit code 4) where it cannot be had within the start limit."""
        source = options.sources.get("scheduler") or options.sources.get("backend", "")
        n_jobs = options.requested_jobs if options.scheduler else options.n_jobs
        return cls(options.scheduler, n_jobs, source, limit_s)

    @staticmethod
    def spec_fields(
        cluster: DaskCluster | None, items: list[pytest.Item], config: pytest.Config, n_units: int
    ) -> tuple[int, str, tuple[tuple[str, str], ...]] | None:
        """The run spec's worker count, rootdir and project files (which workers check), on
        ``cluster``; None without one."""
        if cluster is None:
            return None
        n_workers = max(1, min(len(cluster.names), n_units))
        return n_workers, str(config.rootpath), project_files(items, config.rootpath)

    def engine_settings(self) -> dict[str, Any]:
        """What a round's ``parallel_config("dask", ...)`` is given: a cluster of the run's
        own is all its; on another, the chosen workers' current addresses (the scheduler takes
        no names that are not strings, nor the name of a worker that is restarting). Loosely:
        a task meant for a worker that dies (its nanny starts it again at a new address) goes
        to another rather than waiting for an address that is gone for good."""
        settings: dict[str, Any] = {"client": self.client}
        if self.cluster is None:
            # run_once: a test whose worker died is not run again elsewhere (our own cluster
            # has allowed-failures 0), nor is the worker that dask gave it to restarted (its
            # session would be lost with the tests it holds).
            settings.update(workers=self.addresses(), allow_other_workers=True, run_once=True)
        return settings

    def addresses(self) -> list[str]:
        """The addresses of the chosen workers that are there now."""
        by_identity = {
            _identity(address, info): address
            for address, info in self.client.scheduler_info(n_workers=-1)["workers"].items()
        }
        return [by_identity[name] for name in self.names if name in by_identity]

    def pinned(self, function: Any) -> list[Pinned]:
        """``function`` pinned to each chosen worker that is there now."""
        return [Pinned(address, function) for address in self.addresses()]

    def describe(self) -> str:
        where = "a LocalCluster on 127.0.0.1" if self.address is None else self.address
        return f"{len(self.names)} dask workers ({where})"

    def close(self) -> None:
        for closable in (self.client, self.cluster):
            if closable is not None:
                try:
                    closable.close()
                except Exception:
                    pass
        if self._config is not None:
            self._config.__exit__(None, None, None)
            self._config = None


class EarlyStart:
    """A pytest plugin that starts the run's cluster when the session starts, before this
    process collects (the fork server that starts its workers was launched when pytest was
    configured, and imports what they need meanwhile); ``take()`` hands it over to the run, and
    a cluster nobody took (collection failed) is closed at the session's end."""

    def __init__(self, options: Any) -> None:
        self.options = options
        self._started = False
        self._cluster: DaskCluster | None = None
        self._error: BaseException | None = None

    @classmethod
    def register(cls, config: pytest.Config, options: Any) -> EarlyStart | None:
        """For a run on dask: the plugin, registered."""
        if options.backend != "dask":
            return None
        early = cls(options)
        config.pluginmanager.register(early, "parproc-dask-start")
        local = options.scheduler is None and not config.option.collectonly
        if local and _start_method() == "forkserver":
            _start_fork_server()  # before this process imports dask: side by side
        return early

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if session.config.option.collectonly or self._started:
            return
        self._started = True
        # Here, not in a thread beside collection: warning filters are the whole process's,
        # and a suite's `filterwarnings = error`, in force while pytest collects, turned a
        # warning of dask's own (an unclosed socket while it looks for a port) into an error
        # that stopped the cluster. The start limit leaves out this process's collection,
        # which has not happened yet.
        try:
            self._cluster = DaskCluster.for_run(self.options, start_limit(self.options, 0.0)[0])
        except BaseException as error:  # raised where the run takes the cluster
            self._error = error

    def take(self, limit_s: float) -> DaskCluster:
        if not self._started:
            return DaskCluster.for_run(self.options, limit_s)
        if self._error is not None:
            raise self._error
        cluster, self._cluster = self._cluster, None
        assert cluster is not None
        return cluster

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _identity(address: str, info: dict[str, Any]) -> Any:
    """What names a worker across its nanny's restarts: the nanny's address where it has one
    (a worker's own name is its address unless it was given one), else its name (a
    LocalCluster's are ints)."""
    return info.get("nanny") or info.get("name", address)


def project_files(items: Iterable[pytest.Item], rootdir: Path) -> tuple[tuple[str, str], ...]:
    """The test modules and the conftest.py files above them, relative to ``rootdir``, with a
    digest of each: a worker on another machine checks it has the same project."""
    paths: set[Path] = set()
    for item in items:
        path = Path(item.path)
        paths.add(path)
        for folder in path.parents:
            conftest = folder / "conftest.py"
            if conftest.is_file():
                paths.add(conftest)
            if folder == rootdir:
                break
    return tuple(
        (os.path.relpath(path, rootdir), _digest(path)) for path in sorted(paths) if path.is_file()
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_files(rootdir: str, files: tuple[tuple[str, str], ...]) -> None:
    """In a worker, before it builds its session: every file is the main process's; a clear
    error names the first that is not."""
    for relative, digest in files:
        path = Path(rootdir, relative)
        if not path.is_file():
            raise RuntimeError(f"this dask worker has no {path}: it does not hold the project")
        if _digest(path) != digest:
            raise RuntimeError(
                f"{path} on this dask worker differs from the main process's: the worker "
                "holds another version of the project"
            )


def where() -> str:
    """This worker process as the main process can name it before it has a worker id."""
    return f"pid {os.getpid()} ({dask_address() or 'no dask worker'})"


def dask_address() -> str:
    """The address of the dask worker this process is, or ""."""
    if "distributed" not in sys.modules:
        return ""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return ""
