"""Stopping a worker for good: its whole process tree, found and killed with psutil."""

from __future__ import annotations

import os
import signal


def kill_process_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it; processes already gone are skipped.

    Children are collected before the parent is killed: once it is dead they are re-parented
    and can no longer be found from it.
    """
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a declared dependency
        _kill(pid)
        return
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        children = []
    _kill(pid)
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
