"""Session-wide checks: no worker process may outlive the test session."""

from __future__ import annotations

import multiprocessing.forkserver
import multiprocessing.resource_tracker
from collections.abc import Iterator

import psutil
import pytest

from pytest_parproc.parallel._pool.reusable import current_worker_pids, shutdown_reusable_pool


def multiprocessing_helper_pids() -> set[int]:
    # The fork server and the resource tracker of ``multiprocessing`` live as long as this
    # interpreter by design; they are not workers. Their pids are only kept in private
    # attributes, read here and nowhere else.
    pids = {
        getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None),
        getattr(multiprocessing.resource_tracker._resource_tracker, "_pid", None),
    }
    return {pid for pid in pids if pid is not None}


@pytest.fixture(scope="session", autouse=True)
def no_worker_left_behind() -> Iterator[None]:
    """At the end of the session, every child process must belong to the reusable pool (kept
    warm by design) and must be gone once that pool is shut down."""
    yield
    helpers = multiprocessing_helper_pids()
    pool_pids = set(current_worker_pids())
    me = psutil.Process()
    children = [child for child in me.children() if child.pid not in helpers]
    strays = [child for child in children if child.pid not in pool_pids]
    shutdown_reusable_pool()
    strays += [child for child in children if child.pid in pool_pids]
    _, alive = psutil.wait_procs(strays, timeout=10)
    alive = [process for process in alive if process.status() != psutil.STATUS_ZOMBIE]
    for process in alive:
        process.kill()
    assert not alive, f"processes left behind: {[_described(p) for p in alive]}"


def _described(process: psutil.Process) -> tuple[int, list[str] | str]:
    try:
        return process.pid, process.cmdline()
    except psutil.Error as error:  # it ended, or became a zombie, since
        return process.pid, type(error).__name__
