"""The process-wide reusable pool: kept warm between calls, resized or replaced on demand."""

from __future__ import annotations

import atexit
import logging
import os
import threading

from .pool import PoolSettings, ProcessPool

logger = logging.getLogger("pytest_parproc.pool")

_lock = threading.Lock()
_pool: ProcessPool | None = None


def get_reusable_pool(n_workers: int, settings: PoolSettings) -> ProcessPool:
    """The shared pool, sized for ``n_workers``.

    It is reused when its settings are equal (initializer, limits, environment); otherwise it
    is shut down and replaced, and the reason is logged. A pool inherited through ``fork`` is
    never reused: its manager thread did not survive the fork.
    """
    global _pool
    with _lock:
        pool = _pool
        if pool is not None:
            reason = ""
            if pool.pid != os.getpid():
                reason = "this process was forked from the one that started it"
            elif not pool.alive:
                reason = "it was shut down"
            elif pool.settings != settings:
                reason = "its settings differ from this call's"
            if not reason:
                if pool.max_workers != n_workers:
                    pool.resize(n_workers)
                return pool
            logger.debug("replacing the reusable worker pool: %s", reason)
            if pool.pid == os.getpid():
                pool.shutdown(wait=True)
        _pool = ProcessPool(n_workers, settings)
        return _pool


def shutdown_reusable_pool() -> None:
    """Stop the shared pool's workers now (they would otherwise exit when idle or at exit)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None and pool.pid == os.getpid():
        pool.shutdown(wait=True)


def current_worker_pids() -> list[int]:
    """Process ids of the shared pool's workers (for tests and diagnostics)."""
    pool = _pool
    return [] if pool is None or pool.pid != os.getpid() else pool.worker_pids()


def _forget_in_child() -> None:
    # A child forked while the lock was held (the pool forks its first workers from inside
    # get_reusable_pool) would wait for it forever; the parent's pool is not the child's.
    global _lock, _pool
    _lock = threading.Lock()
    _pool = None


atexit.register(shutdown_reusable_pool)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
