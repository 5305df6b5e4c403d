"""freezegun in a dask worker: dask's own event loop keeps the real clock.

freezegun patches the clock process-wide (``time.time``, ``time.monotonic``, ``datetime``)
and, on every ``freeze_time``, walks every loaded module to patch what it imported. A dask
worker runs a test in a thread beside the worker's event loop: under a frozen clock the loop's
timers and heartbeats stop (babel's suite, whose date tests freeze the clock, lost both
workers and took 178 s instead of 16), and dask's many modules make each freeze slow.
freezegun's ignore list (``freezegun.configure(extend_ignore_list=...)``) gives callers in
those modules the real clock and leaves them out of its walk.

The cost: in a dask worker, asyncio's own calls (``loop.time()``) see the real clock too, so a
test that runs an event loop under ``freeze_time`` behaves as with freezegun's
``real_asyncio=True``. Other backends are left alone (their tests run in the worker's main
thread, with no event loop beside them).
"""

from __future__ import annotations

#: The modules of a dask worker's event loop (tornado runs on asyncio's).
EVENT_LOOP_MODULES = ["distributed", "dask", "tornado", "asyncio", "pytest_parproc"]


def real_clock_for_dask_worker() -> None:
    """In a dask worker, before its session is built: where the suite uses freezegun."""
    try:
        import freezegun
    except ImportError:
        return
    configure = getattr(freezegun, "configure", None)  # (freezegun 1.1 and later)
    if configure is not None:
        configure(extend_ignore_list=EVENT_LOOP_MODULES)
