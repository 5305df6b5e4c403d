"""Batch sizes: a fixed size, or 'auto' sized from measured task durations."""

from __future__ import annotations

import math


class BatchSizer:
    """Chooses how many tasks go into the next batch.

    With ``batch_size='auto'`` the size starts at 1 and follows the measured duration per task
    (an exponential moving average of what workers report), aiming at batches of about
    ``TARGET_S``: long enough to hide the cost of a round trip to a worker, short enough to
    keep workers balanced. ``cap`` keeps the tail fair: once the input is known to end, no
    batch takes more than its share of what is left, so no worker idles while another still
    has a long queue.
    """

    TARGET_S = 0.2
    #: The tail is not cut into batches shorter than this: below it, a round trip to a
    #: worker costs more than the imbalance it would remove.
    MIN_TAIL_S = 0.02
    MAX_SIZE = 10_000

    def __init__(self, batch_size: int | str, n_jobs: int) -> None:
        if batch_size == "auto":
            self.fixed: int | None = None
        elif isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > 0:
            self.fixed = batch_size
        else:
            raise ValueError(f"batch_size must be 'auto' or a positive int, got {batch_size!r}")
        self.n_jobs = n_jobs
        self._task_s: float | None = None
        self._size = 1

    @property
    def size(self) -> int:
        return self.fixed if self.fixed is not None else self._size

    def capped(self, remaining: int) -> int:
        """The size for the next batch when ``remaining`` tasks are all that is left."""
        if self.fixed is not None:
            return self.fixed
        share = math.ceil(remaining / (2 * self.n_jobs))
        if self._task_s is not None:
            share = max(share, math.ceil(self.MIN_TAIL_S / self._task_s))
        return max(1, min(self._size, share))

    def record(self, n_tasks: int, duration_s: float) -> None:
        """Learn from a finished batch of ``n_tasks`` that ran for ``duration_s``."""
        if self.fixed is not None or n_tasks == 0:
            return
        per_task = max(duration_s / n_tasks, 1e-7)
        self._task_s = per_task if self._task_s is None else 0.7 * self._task_s + 0.3 * per_task
        ideal = int(self.TARGET_S / self._task_s)
        # Grow at most 8x per step, so one fast first task does not send the whole input in
        # a single batch before anything has been learned about the others.
        self._size = max(1, min(ideal, self._size * 8, self.MAX_SIZE))
