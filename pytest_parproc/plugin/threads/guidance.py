"""Whether threads could bring anything to this run: when the concurrent tests kept the
interpreter busy nearly all the time they ran (CPU-bound Python, one GIL for all threads), no
number of threads makes them faster, and the summary says so, with the figures, and names the
backend that would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: CPU seconds (tests' threads and the main thread) per second of the concurrent part from
#: which threads are judged to bring nothing: waiting (I/O, sleeps, subprocesses, C code that
#: lets go of the GIL) is what threads overlap, and a run this busy had too little of it.
BUSY_SHARE = 0.8
#: Below this much concurrent time the figures say little (start-up dominates).
MIN_WALL_S = 1.0
#: Above this, threads did run at the same time (C code that lets go of the GIL: hashing,
#: compression, numpy): they help.
PARALLEL_SHARE = 1.1


@dataclass
class CpuShare:
    """CPU time and wall time of the concurrent parts of a run."""

    cpu_s: float = 0.0
    wall_s: float = 0.0

    @contextmanager
    def measured(self) -> Iterator[None]:
        """Count the wall time of a concurrent part, and the calling thread's CPU time."""
        wall_started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(time.thread_time() - cpu_started, time.perf_counter() - wall_started)

    def add(self, cpu_s: float, wall_s: float) -> None:
        self.cpu_s += cpu_s
        self.wall_s += wall_s

    def line(self, one_at_a_time_s: float = 0.0) -> str | None:
        """The summary's line when threads could bring nothing; None otherwise.
        ``one_at_a_time_s``: how long of it tests ran one at a time (``admission``)."""
        if self.wall_s < MIN_WALL_S:
            return None
        share = self.cpu_s / self.wall_s
        if not BUSY_SHARE <= share <= PARALLEL_SHARE:
            return None
        alone = ""
        if one_at_a_time_s >= 0.05 * self.wall_s:
            alone = (
                f", so they ran one at a time for {min(one_at_a_time_s, self.wall_s):.1f} s of "
                "it (--par-thread-concurrency=full keeps --n-jobs at once)"
            )
        return (
            f"parproc: threads bring no speed-up to these tests: they kept the interpreter busy "
            f"{share:.0%} of the {self.wall_s:.1f} s they ran on threads ({self.cpu_s:.1f} s of "
            f"CPU, one GIL for all threads), with little waiting for threads to overlap{alone}; "
            "a process backend runs them side by side: --par-backend=loky"
        )
