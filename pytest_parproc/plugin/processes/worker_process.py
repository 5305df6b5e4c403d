"""What a worker process sets up around its session, and when it is spent: a terminal nobody
sees, a process group of its own, and the --par-max-* limits."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ...parallel.resources import recycling_limit_reached
from ..messages import RunSpec


class HooklessReporter:
    """Stands in for the terminal reporter in a worker: what plugins read from it (its writer,
    its options) is the real one's, but it takes no hook calls, so the worker does not spend
    time on per-test output nobody sees (the main process prints the real one)."""

    def __init__(self, reporter: object) -> None:
        self._reporter = reporter

    def __getattr__(self, name: str) -> Any:
        if name.startswith("pytest_"):
            raise AttributeError(name)
        return getattr(self._reporter, name)


def quiet_terminal(config: pytest.Config) -> None:
    manager = config.pluginmanager
    reporter = manager.get_plugin("terminalreporter")
    if reporter is not None and not isinstance(reporter, HooklessReporter):
        manager.unregister(reporter)
        manager.register(HooklessReporter(reporter), "terminalreporter")


def lead_process_group() -> None:
    """Make this worker the leader of a process group of its own: the processes its tests start
    join it, so when the worker dies (a crash, --par-timeout) the main process kills them all
    with one ``killpg``, even those its death left without a parent."""
    try:
        os.setpgid(0, 0)
    except (AttributeError, OSError):
        pass  # not POSIX, or already a group leader (a session leader cannot move)


def may_start_processes() -> None:
    """A multiprocessing pool's workers are daemonic, and Python refuses a daemonic process
    children of its own ("daemonic processes are not allowed to have children"): a test that
    starts a ``multiprocessing.Pool`` or ``Process`` would fail here and pass serially. Its
    tests run as in a serial run's process: not daemonic, as far as this process knows (the
    main process still sees the worker as daemonic, and ends it at exit as before)."""
    import multiprocessing

    current = multiprocessing.current_process()
    if current.daemon:
        try:
            current.daemon = False  # (its setter refuses only a process started from here)
        except AssertionError:
            pass


def process_started_at() -> float | None:
    import psutil

    try:
        return float(psutil.Process().create_time())
    except psutil.Error:
        return None


def retire_reason(spec: RunSpec, tests_run: int) -> str:
    """Why this worker should make way for a fresh one (--par-max-tasks-per-worker,
    --par-max-worker-memory), or "" while it may go on."""
    limit, memory = spec.max_tasks_per_worker, spec.max_worker_memory
    reached = recycling_limit_reached(tests_run, limit, memory)
    if reached is None:
        return ""
    if reached[0] == "tasks":
        return f"it ran {tests_run} tests (--par-max-tasks-per-worker={limit})"
    return f"it uses {reached[1]} bytes (--par-max-worker-memory={memory})"
