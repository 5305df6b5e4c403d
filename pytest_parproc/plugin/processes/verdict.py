"""What a worker's death means for the run: the test to blame (or a note for the summary), how
the run goes on, and the restart budget. Pure decisions: the controller gathers the facts
(``Death``) and carries the verdict out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ...parallel import WorkerCrashedError
from ..options import DEFAULT_START_LIMIT_S, START_TIMEOUT, ParprocOptions
from .crashes import CrashReport, describe_crash, describe_timeout, is_timeout

#: Why the run stops after a death outside any test.
OUTSIDE_TESTS = "pytest-parproc: a worker died outside of any test"


@dataclass(frozen=True)
class Victim:
    """The test a worker was running when it died, and the phase it was in."""

    index: int
    nodeid: str
    phase: str


@dataclass(frozen=True)
class Death:
    """What the main process knows of a dead worker once its progress log is replayed."""

    error: WorkerCrashedError
    #: "" when it died before it claimed an id
    worker_id: str
    victim: Victim | None
    #: what its faulthandler wrote (a fatal signal's traceback, or the stacks at a time limit)
    fault: str
    #: it had sent no result in this round: it was still building its session
    building: bool


@dataclass(frozen=True)
class Verdict:
    #: the worker ended itself at a time limit: the test's failure, not counted as a crash
    timed_out: bool
    #: the victim's failure report, or the summary's note on a death outside any test
    text: str
    #: how the run goes on: a replacement worker takes over (None), the run stops like after a
    #: collection error (``shouldstop``, exit code 2), or it fails (``shouldfail``)
    stop: Literal["shouldstop", "shouldfail"] | None = None
    reason: str = ""


def judge(death: Death, limit: str, start: tuple[float, str]) -> Verdict:
    """``limit`` names --par-timeout and where it was set; ``start`` is how long a worker
    may build its session, and why."""
    error, worker_id, victim = death.error, death.worker_id, death.victim
    timed_out = bool(worker_id) and is_timeout(death.fault)
    if victim is not None:
        test = f"{victim.nodeid} ({victim.phase})"
        if timed_out:
            return Verdict(True, describe_timeout(error, worker_id, test, limit, death.fault))
        text = describe_crash(error, worker_id, f"while running {test}", death.fault)
        return Verdict(False, text + " The other tests go on in a replacement worker.")
    # Dead outside any test (building its session, importing a conftest, ending its session):
    # retrying would most likely die the same way.
    doing = "while it was not running a test (starting, collecting or ending its session)"
    if death.building:
        doing = "while building its session (configuring, importing, collecting)"
    if timed_out:
        limit_s, why = start
        doing = f"building its session, past the time limit ({limit_s:.3g} s: {why})"
    text = describe_crash(error, worker_id, doing, death.fault)
    # A worker that cannot build its session is like a collection error: exit code 2.
    stop: Literal["shouldstop", "shouldfail"] = "shouldstop" if death.building else "shouldfail"
    return Verdict(timed_out, text, stop, OUTSIDE_TESTS)


def over_budget(crashes: Sequence[CrashReport], max_worker_restart: int) -> str | None:
    """Why the run fails once more workers crashed than may be replaced, else None. Timeouts
    are the test's failure, not the worker's: they do not count."""
    count = crashed_count(crashes)
    if count <= max_worker_restart:
        return None
    return f"pytest-parproc: {count} worker crashes (--par-max-worker-restart={max_worker_restart})"


def crashed_count(crashes: Sequence[CrashReport]) -> int:
    """Crashes counted against --par-max-worker-restart."""
    return sum(not crash.timed_out for crash in crashes)


def start_limit(options: ParprocOptions, own_s: float) -> tuple[float, str]:
    """How long a worker may take to build its session, and where that comes from: a worker
    that collects does what this process did in ``own_s`` (start-up and collection), so a
    slow collection is not taken for a hang."""
    explicit = options.start_timeout_s
    if explicit is not None:
        return explicit, f"{options.sources['start_timeout']} = {explicit:g} s"
    floor = max(DEFAULT_START_LIMIT_S, options.timeout_s or 0.0)
    return max(floor, 10 * own_s), (
        f"ten times this process's own start-up and collection, and at least {floor:g} s; "
        f"{START_TIMEOUT.flag} sets it"
    )
