"""After a worker dies: recover what it finished from its progress log, name the test it was
running, and describe the death (exit code or signal, faulthandler traceback, stderr tail)."""

from __future__ import annotations

from dataclasses import dataclass

from ..parallel import WorkerCrashedError
from .messages import ItemRecord
from .replay import Replayer
from .rundir import RunDirectory, read_progress_log


@dataclass(frozen=True)
class CrashReport:
    worker_id: str
    pid: int | None
    exitcode: int | None


def recover_log(
    run_dir: RunDirectory, worker_id: str, replayer: Replayer, blame: bool
) -> tuple[int, str] | None:
    """Replay every test the worker finished and the main process has not heard of yet.

    With ``blame``, the test it had started and not finished is replayed as far as it got, and
    returned with the phase that was running; without, that test is left to run again (its
    worker was stopped by the engine, not killed by the test)."""
    records: dict[int, ItemRecord] = {}
    running: int | None = None
    for record in read_progress_log(run_dir.log_path(worker_id)):
        kind, index = record[0], record[1]
        if kind == "start":
            records[index] = ItemRecord(index)
            running = index
        elif index not in records:
            continue
        elif kind == "report":
            records[index].reports.append(record[2])
        elif kind == "warning":
            records[index].warnings.append(record[2])
        elif kind == "end":
            records[index].complete = bool(record[2])
            replayer.replay(records[index])
            running = None
    if running is None or not blame:
        return None
    replayer.replay(records[running])
    return running, _phase_after(records[running])


def _phase_after(record: ItemRecord) -> str:
    """The phase a test was in when it died, from the reports it had produced."""
    if not record.reports:
        return "setup"
    last = record.reports[-1]
    if last.get("when") == "setup":
        return "call" if last.get("outcome") == "passed" else "teardown"
    return "teardown"


def describe_crash(
    error: WorkerCrashedError, worker_id: str, doing: str, run_dir: RunDirectory
) -> str:
    """``doing`` says what the worker was at: ``while running <test> (call)``, ..."""
    who = f"worker {worker_id} (pid {error.pid})" if worker_id else f"a worker (pid {error.pid})"
    text = f"pytest-parproc: {who} {error.how_it_ended} {doing}."
    try:
        fault = run_dir.fault_path(worker_id).read_text(errors="replace").strip()
    except OSError:  # no id, or died before its session enabled faulthandler
        fault = ""
    if fault:
        text += "\n\n--- faulthandler traceback ---\n" + fault
    if error.stderr_tail.strip():
        text += "\n\n--- last lines the worker wrote to stderr ---\n" + error.stderr_tail.rstrip()
    return text
