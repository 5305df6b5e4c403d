"""What this process uses, as the system counts it: its threads and its resident memory."""

from __future__ import annotations

import os
import threading


def thread_count() -> int:
    """This process's threads, native ones included (OpenMP, BLAS and gRPC pools are invisible
    to ``threading``); ``threading``'s count where the system does not tell."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def resident_memory_bytes() -> int:
    """This process's resident set size (workers recycle themselves past a limit)."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def recycling_limit_reached(
    done: int, max_done: int | None, max_memory_bytes: int | None
) -> tuple[str, int] | None:
    """Which limit a worker that recycles itself has reached, with the value that reached it:
    ``("tasks", done)`` once it did ``max_done`` tasks, ``("memory", rss)`` once its resident
    memory is over ``max_memory_bytes``; None while it may go on."""
    if max_done is not None and done >= max_done:
        return "tasks", done
    if max_memory_bytes is not None:
        rss = resident_memory_bytes()
        if rss > max_memory_bytes:
            return "memory", rss
    return None
