"""Where the time went: per-worker busy, idle and start-up seconds, and the terminal table."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .messages import TaskResult


@dataclass
class WorkerTiming:
    worker_id: str
    pid: int
    tests: int = 0
    busy_s: float = 0.0
    startup_s: float = 0.0
    inherited: bool = False
    address: str = ""  # a dask worker's


class RunTiming:
    """Collects what task results say about each worker, and the run's own clock."""

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at  # time.time() when the run began
        self.workers: dict[str, WorkerTiming] = {}
        self.wall_s = 0.0
        self.test_time_s = 0.0
        #: why workers could not be forked after collection (None: nothing stood in the way)
        self.fork_blocker: str | None = None
        #: shared fixtures (values, set-up and teardown seconds), in the main process
        self.shared: tuple[int, float, float] | None = None

    def add(self, result: TaskResult) -> None:
        if not result.worker_id:
            return
        worker = self.workers.get(result.worker_id)
        if worker is None:
            worker = self.workers[result.worker_id] = WorkerTiming(result.worker_id, result.pid)
        worker.tests += len(result.records)
        worker.busy_s += result.busy_s
        worker.address = worker.address or result.address
        if result.ready_at is not None:
            # From the run's start (or the worker's own, for a replacement started later) to
            # a session ready to run tests: process start, pytest configuration, collection.
            since = max(self.started_at, result.process_started_at or self.started_at)
            worker.startup_s = max(result.startup_s or 0.0, result.ready_at - since)
            worker.inherited = result.inherited

    def add_test(self, worker_id: str, pid: int, busy_s: float) -> None:
        """One test run by a thread of this process (no start-up of its own)."""
        worker = self.workers.get(worker_id)
        if worker is None:
            worker = self.workers[worker_id] = WorkerTiming(worker_id, pid)
        worker.tests += 1
        worker.busy_s += busy_s

    def add_shared(self, count: int, setup_s: float, teardown_s: float) -> None:
        """Shared fixtures set up before the workers started and torn down after they ended:
        part of the run's wall time, in the main process."""
        self.shared = (count, setup_s, teardown_s)
        self.wall_s += setup_s + teardown_s

    def lines(self, verbosity: int, backend: str) -> list[str]:
        speedup = self.test_time_s / self.wall_s if self.wall_s > 0 else 0.0
        total = (
            f"wall {self.wall_s:.2f} s, summed test time {self.test_time_s:.2f} s, "
            f"speed-up {speedup:.2f}x over running the tests one after another"
        )
        if backend == "threading":
            # Threads share one interpreter: a test's time includes waiting for the GIL and
            # for fixtures other tests set up, so the sum says nothing of a serial run's time.
            total = (
                f"wall {self.wall_s:.2f} s, summed test time {self.test_time_s:.2f} s (a "
                "test's time includes waiting for the GIL and for shared fixtures: no speed-up "
                "can be read from it)"
            )
        if verbosity < 0:
            count = len(self.workers)
            return [f"parproc: {count} worker{'s' if count != 1 else ''} ({backend}): {total}"]
        # Dask workers (maybe on other machines) are named by their address beside the pid.
        addressed = any(worker.address for worker in self.workers.values())
        where = "address/pid" if addressed else "pid"
        header = ("worker", where, "tests", "busy s", "idle s", "start-up s", "utilization")
        rows = [header]
        for worker in sorted(self.workers.values(), key=_order):
            idle_s = max(0.0, self.wall_s - worker.startup_s - worker.busy_s)
            utilization = worker.busy_s / self.wall_s if self.wall_s > 0 else 0.0
            rows.append(
                (
                    worker.worker_id,
                    f"{worker.address}/{worker.pid}" if worker.address else str(worker.pid),
                    str(worker.tests),
                    f"{worker.busy_s:.2f}",
                    f"{idle_s:.2f}",
                    f"{worker.startup_s:.2f}",
                    f"{utilization:.0%}",
                )
            )
        if self.shared is not None:
            count, setup_s, teardown_s = self.shared
            busy_s = setup_s + teardown_s
            share = busy_s / self.wall_s if self.wall_s > 0 else 0.0
            idle = f"{max(0.0, self.wall_s - busy_s):.2f}"
            rows.append(
                ("shared", str(os.getpid()), "-", f"{busy_s:.2f}", idle, "0.00", f"{share:.0%}")
            )
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        lines = [
            "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
            for row in rows
        ]
        note = self.start_note() if backend != "threading" else ""  # threads start nothing
        if note:
            lines.append(f"start-up: {note}")
        if self.shared is not None:
            count, setup_s, teardown_s = self.shared
            lines.append(
                f"shared: {count} fixture value{'s' if count != 1 else ''} set up once in the "
                f"main process ({setup_s:.2f} s, before the workers' first test) and torn down "
                f"there ({teardown_s:.2f} s, after their last)"
            )
        lines.append(f"total: {total}")
        return lines

    def start_note(self) -> str:
        """How the process workers got their tests: forked after collection, or not."""
        # (the main process's own row, tests run alone after the parallel part, started nothing)
        workers = [worker for worker in self.workers.values() if worker.worker_id != "main"]
        forked = sum(worker.inherited for worker in workers)
        if not workers:
            return ""
        if forked == len(workers):
            return "workers forked after collection took over its session"
        why = f" ({self.fork_blocker})" if self.fork_blocker else ""
        if not forked:
            return f"workers collected the tests themselves{why}"
        return (
            f"{forked} of {len(workers)} workers forked after collection took over its "
            "session; the others (started later, or by the backend's own means) collected the "
            f"tests themselves{why}"
        )


def _order(worker: WorkerTiming) -> tuple[int, str]:
    """w0, w1, ... w10 in numeric order; others (the main thread) last."""
    number = worker.worker_id[1:]
    return (
        (int(number), "")
        if worker.worker_id[:1] == "w" and number.isdigit()
        else (1 << 30, worker.worker_id)
    )
