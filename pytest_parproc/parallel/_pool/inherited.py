"""What a worker takes from the process that starts it: its share of the native thread pools
and the key of multiprocessing's connections."""

from __future__ import annotations

import os
import sys

# Native thread pools (BLAS, OpenMP...) in every worker would each start one thread per CPU;
# like joblib, give each worker its share unless the user set the variable already.
THREAD_LIMIT_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "BLIS_NUM_THREADS",
)


def thread_limits(n_workers: int, per_worker: int | None = None) -> dict[str, str]:
    from ..cpu import cpu_count

    threads = per_worker if per_worker is not None else max(1, cpu_count() // max(1, n_workers))
    return {name: os.environ.get(name, str(threads)) for name in THREAD_LIMIT_VARIABLES}


def caller_thread_limits() -> tuple[tuple[str, str | None], ...]:
    """The caller's own thread-limit variables now (``PoolSettings.parent_limits``)."""
    return tuple((name, os.environ.get(name)) for name in THREAD_LIMIT_VARIABLES)


def authkey() -> bytes | None:
    """This process's multiprocessing key, which a worker takes before it unpickles anything:
    ``multiprocessing.Manager()`` proxies passed to tasks or an initializer then connect (a
    spawned process gets the key the same way). None where no manager can exist (its module
    is not loaded): the worker then need not import multiprocessing to start."""
    if "multiprocessing.managers" not in sys.modules:
        return None
    return bytes(sys.modules["multiprocessing.process"].current_process().authkey)
