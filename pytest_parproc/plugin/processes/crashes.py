"""After a worker dies: recover what it finished from its progress log, name the test it was
running, and describe the death (exit code or signal, faulthandler traceback, stderr tail)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from ...parallel import Parallel, WorkerCrashedError
from ..messages import ItemRecord
from ..replay import Replayer, phase_after, report_field
from .rundir import RunDirectory


@dataclass(frozen=True)
class CrashReport:
    worker_id: str
    pid: int | None
    exitcode: int | None
    #: stopped by --par-timeout: a test's failure, not counted against --par-max-worker-restart
    timed_out: bool = False


def recover_log(
    run_dir: RunDirectory, worker_id: str, replayer: Replayer, blame: bool
) -> tuple[int, str] | None:
    """Replay every test the worker finished and the main process has not heard of yet.

    With ``blame``, the test it had started and not finished is replayed as far as it got, and
    returned with the phase that was running; without, that test is left to run again (its
    worker was stopped by the engine, not killed by the test)."""
    records: dict[int, ItemRecord] = {}
    running: int | None = None
    for record in run_dir.read_log(worker_id):
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
    reports = records[running].reports
    last = None
    if reports:
        last = (
            str(report_field(reports[-1], "when")),
            report_field(reports[-1], "outcome") == "passed",
        )
    return running, phase_after(last)


def describe_crash(error: WorkerCrashedError, worker_id: str, doing: str, fault: str) -> str:
    """``doing`` says what the worker was at: ``while running <test> (call)``, ...; ``fault``
    is what its faulthandler wrote."""
    who = f"worker {worker_id} (pid {error.pid})" if worker_id else f"a worker (pid {error.pid})"
    text = f"pytest-parproc: {who} {error.how_it_ended} {doing}."
    if fault:
        text += "\n\n--- faulthandler traceback ---\n" + fault
    if error.stderr_tail.strip():
        text += "\n\n--- last lines the worker wrote to stderr ---\n" + error.stderr_tail.rstrip()
    return text


#: How faulthandler's dump_traceback_later starts what it writes.
_TIMEOUT_HEADER = "Timeout ("


def fault_text(run_dir: RunDirectory, worker_id: str) -> str:
    """What the worker's faulthandler wrote (a fatal signal's or a timeout's stacks)."""
    # (empty: no id, or it died before its session enabled faulthandler)
    return run_dir.read_fault(worker_id) if worker_id else ""


def is_timeout(fault: str) -> bool:
    """Whether a worker's faulthandler output says it ended itself at a time limit
    (``--par-timeout``, or the limit on building its session; see ``worker``)."""
    return fault.startswith(_TIMEOUT_HEADER)


def describe_timeout(
    error: WorkerCrashedError, worker_id: str, test: str, limit: str, fault: str
) -> str:
    """``limit`` names the setting and where it came from: ``option --par-timeout = 2 s``."""
    text = (
        f"pytest-parproc: {test} ran past the time limit ({limit}). Worker {worker_id} (pid "
        f"{error.pid}) was stopped, with every process it had started, and a fresh worker goes "
        "on with the other tests."
    )
    text += "\n\n--- every thread's Python stack at the limit ---\n" + fault
    if error.stderr_tail.strip():
        text += "\n\n--- last lines the worker wrote to stderr ---\n" + error.stderr_tail.rstrip()
    return text


def kill_process_group(pid: int | None) -> None:
    """Kill what is left of a dead worker's process group (the processes its tests started;
    the worker leads a group of its own, see ``worker_process.lead_process_group``)."""
    if pid is None or pid <= 0 or not hasattr(os, "killpg"):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # nothing left, or the group is not the worker's (it died before making it)


def parallel_backend_isolates(name: str) -> bool:
    """Whether the backend can lose one task to a dead worker and go on with the others."""
    return bool(Parallel(n_jobs=2, backend=name).backend.isolates_crashes)
