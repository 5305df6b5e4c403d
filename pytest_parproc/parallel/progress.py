"""Progress lines for ``Parallel(verbose=N)``: done / total, elapsed, remaining, in joblib's
format, written through ``Parallel._print`` (stderr, stdout from verbose 50, as joblib)."""

from __future__ import annotations

import time
from collections.abc import Callable


def short_format_time(seconds: float) -> str:
    """joblib's duration format: ``'  42.0s'``, or ``' 1.2min'`` past a minute."""
    if seconds > 60:
        return f"{seconds / 60:4.1f}min"
    return f" {seconds:5.1f}s"


class Progress:
    """Prints nothing at verbose 0; at 1-9 a start line, lines at 1, 2, 4, 8... tasks done and
    a final line; at 10 and above a line per finished batch; above 50, each batch's size and
    worker too. Lines of one call have one width: that of the total, once it is known."""

    def __init__(
        self, verbose: int, n_jobs: int, backend_class: str, write: Callable[[str], None]
    ) -> None:
        self.verbose = verbose
        self.write = write
        self.started = time.perf_counter()
        self._next_report = 1
        self.ended = False  # every task is done: the next report is the last
        if verbose > 0:
            write(f"Using backend {backend_class} with {n_jobs} concurrent workers.")

    def update(self, done: int, total: int | None, batch_size: int, worker: str = "") -> None:
        """``done`` tasks are finished, of ``total`` where the input's end was seen."""
        if self.verbose <= 0:
            return
        if self.verbose < 10:
            if done < self._next_report:
                return
            while self._next_report <= done:
                self._next_report *= 2
        elapsed = time.perf_counter() - self.started
        width = len(str(total)) if total else 3
        if total is None:
            pad = " " * (len("out of ") + width - len("tasks"))
            text = f"Done {done:{width}d} tasks {pad}| elapsed: {short_format_time(elapsed)}"
        elif done < total:
            remaining = elapsed / max(done, 1) * (total - done)
            text = (
                f"Done {done:{width}d} out of {total:{width}d} | elapsed: "
                f"{short_format_time(elapsed)} remaining: {short_format_time(remaining)}"
            )
        else:
            text = f"Done {done:{width}d} out of {total:{width}d} | elapsed: " + short_format_time(
                elapsed
            )
        if self.verbose > 50:
            text += f" | batch of {batch_size}" + (f" on {worker}" if worker else "")
        self.write(text)

    def finished(self, done: int) -> None:
        if self.verbose > 0:
            width = len(str(done)) if done else 3
            elapsed = short_format_time(time.perf_counter() - self.started)
            self.write(f"Done {done:{width}d} out of {done:{width}d} | elapsed: {elapsed} finished")
