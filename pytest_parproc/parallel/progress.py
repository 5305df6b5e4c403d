"""Progress lines for ``Parallel(verbose=N)``: done / total, elapsed, remaining, in joblib's
format and on joblib's schedule, written through ``Parallel._print`` (stderr, stdout from
verbose 50, as joblib)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


def short_format_time(seconds: float) -> str:
    """joblib's duration format: ``'  42.0s'``, or ``' 1.2min'`` past a minute."""
    if seconds > 60:
        return f"{seconds / 60:4.1f}min"
    return f" {seconds:5.1f}s"


def _verbosity_filter(index: int, verbose: int) -> bool:
    """joblib's schedule while the input is read: True skips the line after ``index``
    dispatched batches; lines grow apart as the square of the index, less so with more
    verbosity (every batch above 10)."""
    if verbose > 10 or index == 0:
        return False
    spread = 0.5 * (11 - verbose) ** 2
    return int(math.sqrt((index + 1) / spread)) == int(math.sqrt(index / spread))


class Progress:
    """joblib's progress lines: nothing at verbose 0; a start line; while the input is read,
    lines on joblib's square-root schedule of dispatched batches (every batch above 10); once
    its end is seen, lines spread over what is left, with the time remaining; a final line.
    Above 50, each line also gives its batch's size and worker (ours). One width for the
    call's lines: that of the input's length where it has one, else 3, as in joblib."""

    def __init__(
        self,
        verbose: int,
        n_jobs: int,
        backend_class: str | None,
        write: Callable[[str], None],
        known_total: int | None = None,
        pre_dispatch: int = 0,
    ) -> None:
        self.verbose = verbose
        self.write = write
        self.started = time.perf_counter()
        self.known_total = known_total
        self.width = len(str(known_total)) if known_total else 3
        self.pre_dispatch = pre_dispatch
        self.ended = False  # every task is done: the next report is the last
        if verbose > 0 and backend_class is not None:  # (joblib's plain loop says nothing)
            write(f"Using backend {backend_class} with {n_jobs} concurrent workers.")

    def update(
        self,
        done: int,
        dispatched_tasks: int,
        dispatched_batches: int,
        exhausted: bool,
        batch: tuple[int, str] = (0, ""),
    ) -> None:
        """A batch ended: ``done`` tasks of the ``dispatched_tasks`` sent (``exhausted``: the
        input's end was seen); ``batch`` is its size and worker."""
        if self.verbose <= 0:
            return
        elapsed = time.perf_counter() - self.started
        width = self.width
        if not exhausted:
            if _verbosity_filter(dispatched_batches, self.verbose):
                return
            if self.known_total is not None:
                text = f"Done {done:{width}d} out of {self.known_total:{width}d} | elapsed: "
            else:
                text = f"Done {done:{width}d} tasks {' ' * (len('out of ') + width - 5)}| elapsed: "
            text += short_format_time(elapsed)
        else:
            total = dispatched_tasks
            if done != 0:
                cursor = total - done + 1 - self.pre_dispatch
                frequency = total // self.verbose + 1
                if done + 1 == total or cursor % frequency:
                    return
            remaining = elapsed / max(done, 1) * (total - done)
            text = (
                f"Done {done:{width}d} out of {total:{width}d} | elapsed: "
                f"{short_format_time(elapsed)} remaining: {short_format_time(remaining)}"
            )
        if self.verbose > 50:
            text += f" | batch of {batch[0]}" + (f" on {batch[1]}" if batch[1] else "")
        self.write(text)

    def finished(self, done: int) -> None:
        if self.verbose > 0:
            width = self.width
            elapsed = short_format_time(time.perf_counter() - self.started)
            self.write(f"Done {done:{width}d} out of {done:{width}d} | elapsed: {elapsed} finished")
