"""When a run stops: the one rule both runners and the process workers apply, and what a test
can ask of the whole run (``pytest.exit``, KeyboardInterrupt) as a ``StopRequest``."""

from __future__ import annotations

from typing import Any

import pytest

from .messages import StopRequest


def stop_wanted(
    session: pytest.Session,
    stop: StopRequest | None = None,
    failures: int = 0,
    maxfail: int = 0,
) -> bool:
    """Whether no new test may start: a test asked the whole run to stop (``stop``), a test or a
    plugin set ``session.shouldfail`` or ``session.shouldstop`` (pytest sets them for ``-x``,
    ``--maxfail`` and ``--sw`` as it logs reports), or ``failures`` seen before any report was
    logged here (a worker's or a thread's) reached ``--maxfail``."""
    return bool(
        stop is not None
        or session.shouldfail
        or session.shouldstop
        or (maxfail and failures >= maxfail)
    )


def run_test(
    hook: Any, item: pytest.Item, nextitem: pytest.Item | None, where: str
) -> StopRequest | None:
    """Run one test's ``pytest_runtest_protocol`` through ``hook`` (with every plugin's
    wrappers); returns what the test asked of the whole run, if anything. ``where`` says where
    it ran, for the KeyboardInterrupt message: ``on worker w1``, ``in the main thread``."""
    try:
        hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
    except pytest.exit.Exception as error:
        return StopRequest("exit", str(error.msg), error.returncode)
    except KeyboardInterrupt:
        return StopRequest("interrupt", f"KeyboardInterrupt raised by {item.nodeid} {where}")
    return None
