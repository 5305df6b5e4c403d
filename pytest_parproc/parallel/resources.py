"""What this process uses, as the system counts it: its threads and its resident memory."""

from __future__ import annotations

import os
import threading
import weakref

#: Threads that their owner declared idle for forking (``allow_fork_beside``).
_idle_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def thread_count() -> int:
    """This process's threads, native ones included (OpenMP, BLAS and gRPC pools are invisible
    to ``threading``); ``threading``'s count where the system does not tell."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def allow_fork_beside(thread: threading.Thread) -> None:
    """Declare ``thread`` safe to fork beside: it waits in a blocking call that holds no lock a
    child could need (a server's ``accept``, say), and the child needs nothing it does. Such a
    thread does not keep the pool from starting its workers by fork (``threads_blocking_fork``).
    The caller vouches for it; a thread that takes locks (logging, imports, allocation in C)
    must not be declared."""
    _idle_threads.add(thread)


def threads_blocking_fork() -> tuple[list[str], int]:
    """Why forking this process now would be unsafe: the names of its other Python threads that
    were not declared idle, and the number of its native threads that Python does not know
    (started by an extension: OpenMP, a BLAS, ...). Both empty: safe to fork."""
    current = threading.current_thread()
    others = [thread for thread in threading.enumerate() if thread is not current]
    busy = sorted(thread.name for thread in others if thread not in _idle_threads)
    native = max(0, thread_count() - 1 - len(others))
    return busy, native


def fork_is_safe() -> bool:
    """Whether this process may fork without exec now: POSIX, and no other thread at work."""
    busy, native = threads_blocking_fork()
    return hasattr(os, "fork") and not busy and not native


def idle_threads_alive() -> bool:
    """Whether a thread declared idle runs now (a fork beside it warns from Python 3.12)."""
    return any(thread.is_alive() for thread in _idle_threads)


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
