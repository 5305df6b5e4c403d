"""Waiting helpers for the engine tests: conditions and processes, with generous deadlines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import psutil


def wait_until(condition: Callable[[], bool], limit_s: float = 10.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``limit_s`` has passed (False)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def still_running(pids: Iterable[int], limit_s: float = 10.0) -> list[psutil.Process]:
    """The processes among ``pids`` that have not exited after ``limit_s`` (zombies count as
    exited: their parent has only not reaped them yet)."""
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=limit_s)
    running = []
    for process in alive:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.NoSuchProcess:
            pass
    return running
