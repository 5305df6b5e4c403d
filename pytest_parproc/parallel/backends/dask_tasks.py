"""What runs on a dask worker for the dask backend: a batch, announced when it starts.

Kept apart from ``dask_backend`` so that a dask worker imports only this small module (and
``tasks``) to run a batch; ``distributed`` is imported inside the function, where the worker has
it already.
"""

from __future__ import annotations

import os
import time
from importlib.util import find_spec
from typing import Any

from ..nesting import reset_nested_fallback, set_nested_fallback
from ..tasks import encode_outcome, run_batch_payload, run_tasks

#: What asking for the dask backend without the extra says.
#: joblib's words first (a user's pytest.raises(match=...) may depend on them), then ours
MISSING = (
    "To use the dask.distributed backend you must install both the `dask` and distributed "
    "modules: the 'dask' backend needs dask.distributed, which is not installed: "
    "pip install 'pytest-parproc[dask]'"
)


def distributed_installed() -> bool:
    """Whether dask.distributed can be imported, without importing it (a third of a second)."""
    return find_spec("distributed") is not None


#: The topic of the events a batch sends when it starts and ends on a worker (dask's structured
#: events; the backend subscribes to it).
STARTED_TOPIC = "pytest-parproc-started"
#: Where a run-once batch is marked started, in the scheduler's metadata (``run_on_dask_worker``).
RUN_ONCE_ROOT = "pytest-parproc-run-once"
#: What a run-once batch started a second time returns instead of an outcome.
REFUSED = b"pytest-parproc: refused to run a batch a second time"


def run_on_dask_worker(
    batch_id: str, payload: bytes | None, tasks: list[Any] | None, once: list[str] | None = None
) -> bytes:
    """Run one batch: its tasks as ``payload`` (pickled), or as ``tasks`` where some argument
    is a scattered future that dask replaced by its value. Returns the encoded outcome.

    ``once``: where the scheduler's metadata marks the batch started. A batch dask starts again
    (its first worker died while it ran, or before its result was fetched) finds the mark and
    runs none of its tasks; the backend has failed it already (``run_once``)."""
    from distributed import get_client, get_worker

    worker = get_worker()
    # Through the worker's client, which waits for the scheduler's answer: the event is on the
    # scheduler before the batch runs, so a batch that kills its worker at once is still known
    # to have started there (``Worker.log_event`` batches its messages, and dies with them).
    client: Any = get_client()
    client.log_event(STARTED_TOPIC, ("start", batch_id, worker.address, os.getpid()))
    if once is not None:
        if client.get_metadata(once, None) is not None:
            return REFUSED
        client.set_metadata(once, worker.address)
    # A nested Parallel call naming no backend uses threads inside this worker, as in a loky
    # worker, not the cluster again (a single-threaded worker waiting on its own cluster).
    token = set_nested_fallback("threading", 1, "dask")
    try:
        if payload is not None:
            outcome = run_batch_payload(payload)[0]
        else:
            started = time.perf_counter()
            values, error = run_tasks(tasks or [])
            outcome = encode_outcome(values, error, time.perf_counter() - started)
    finally:
        reset_nested_fallback(token)
    # Done, so that a later start of the same batch elsewhere is known to be dask computing a
    # result again that a dead worker held (not a crash of this batch).
    client.log_event(STARTED_TOPIC, ("done", batch_id, worker.address, os.getpid()))
    return outcome


def kill_descendants() -> int:
    """Run on a worker (``client.run``) before it is restarted to stop a task: what the task
    started would outlive the worker's restart. Returns how many processes were killed."""
    import psutil

    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return 0
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=5)
    return len(children)


class Pinned:
    """``Pinned(worker, function)``: a task that must run on that dask worker (a name or an
    address), and nowhere else, called as ``function`` would be. Other backends run it as the
    plain function would run. (pytest-parproc ends each worker's session with one.)"""

    __slots__ = ("function", "worker")

    def __init__(self, worker: Any, function: Any) -> None:
        self.worker = worker
        self.function = function

    @property
    def __name__(self) -> str:
        return str(getattr(self.function, "__name__", "pinned"))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)
