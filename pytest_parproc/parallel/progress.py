"""Progress lines on stderr for ``Parallel(verbose=N)``: done / total, elapsed, remaining."""

from __future__ import annotations

import sys
import time


def _format_s(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}min {seconds:.0f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h {int(minutes)}min"


class Progress:
    """Prints nothing at verbose 0; at 1-9 a start line, lines at 1, 2, 4, 8... tasks done and
    a final line; at 10 and above a line per finished batch; above 50, each batch's size and
    worker too."""

    def __init__(self, verbose: int, n_jobs: int, backend_name: str) -> None:
        self.verbose = verbose
        self.prefix = f"[Parallel(n_jobs={n_jobs})]"
        self.started = time.perf_counter()
        self.done = 0
        self._next_report = 1
        if verbose > 0:
            self._write(f"Using backend {backend_name!r} with {n_jobs} concurrent workers.")

    def _write(self, text: str) -> None:
        sys.stderr.write(f"{self.prefix}: {text}\n")
        sys.stderr.flush()

    def batch_done(self, n_tasks: int, total: int | None, worker: str = "") -> None:
        self.done += n_tasks
        if self.verbose <= 0:
            return
        if self.verbose < 10:
            if self.done < self._next_report:
                return
            while self._next_report <= self.done:
                self._next_report *= 2
        elapsed = time.perf_counter() - self.started
        text = f"Done {self.done:5d} tasks"
        if total is not None:
            text = f"Done {self.done:5d} out of {total:5d}"
            if self.done < total:
                remaining = elapsed / self.done * (total - self.done)
                text += f" | elapsed: {_format_s(elapsed):>8} | remaining: {_format_s(remaining)}"
            else:
                text += f" | elapsed: {_format_s(elapsed):>8}"
        else:
            text += f" | elapsed: {_format_s(elapsed):>8}"
        if self.verbose > 50:
            text += f" | batch of {n_tasks}" + (f" on {worker}" if worker else "")
        self._write(text)

    def finished(self) -> None:
        if self.verbose > 0:
            elapsed = time.perf_counter() - self.started
            self._write(
                f"Done {self.done:5d} out of {self.done:5d} | elapsed: "
                f"{_format_s(elapsed):>8} finished"
            )
