"""syrupy: snapshots written by the workers, used and unused ones counted over the whole run
(checked against syrupy 7.0).

syrupy's xdist support splits its session: each worker (``PYTEST_XDIST_WORKER`` set) writes the
snapshots its tests asserted, under a file lock, and publishes its report in
``config.workeroutput``; the controller merges the workers' reports before it looks for unused
snapshots (which ``--snapshot-update`` deletes). Here:

- a worker that collects runs syrupy's own ``pytest_sessionfinish``; a forked worker, which runs
  no session-finish hook, calls syrupy's session ``finish`` when its session ends
  (``finish_in_worker``);
- the worker's ``workeroutput`` travels back with its last task result, and the main process
  hands syrupy's part to syrupy's session (``worker_finished``), as its ``pytest_testnodedown``
  would;
- if a worker's report is missing (it died), the unused snapshots cannot be told: the main
  process turns unused detection off for the run rather than delete live snapshots
  (``reports_missing``);
- the lock files the workers leave are removed once the main process's syrupy has finished
  (``clean_up``).
"""

from __future__ import annotations

from typing import Any

import pytest


def _session(config: pytest.Config) -> Any | None:
    return getattr(config, "_syrupy", None)


def finish_in_worker(config: pytest.Config) -> None:
    """In a forked worker: write this worker's snapshots and publish its report."""
    session = _session(config)
    if session is not None and hasattr(session, "finish"):
        session.finish()


def worker_finished(config: pytest.Config, output: dict[str, Any]) -> None:
    """In the main process: a worker's published report and written snapshot files."""
    session = _session(config)
    if session is None:
        return
    report = output.get("syrupy_report")
    if report is not None and hasattr(session, "add_worker_report"):
        session.add_worker_report(report)
    written = output.get("syrupy_write_sidecars")
    if written and hasattr(session, "add_written_snapshot_locations"):
        session.add_written_snapshot_locations(written)


def reports_missing(config: pytest.Config) -> str | None:
    """Some worker's report was lost (a worker died): turn unused detection off; returns the
    line for the summary, or None without syrupy."""
    if _session(config) is None or getattr(config.option, "disable_unused_snapshots", False):
        return None
    config.option.disable_unused_snapshots = True
    return (
        "parproc: a worker died before it sent its syrupy report: unused snapshots are not "
        "looked for (nor deleted) in this run"
    )


def clean_up(config: pytest.Config) -> None:
    """Remove the lock files the workers' snapshot writes left."""
    session = _session(config)
    cleanup = getattr(session, "_cleanup_write_sidecars", None)
    if cleanup is not None:
        cleanup()
