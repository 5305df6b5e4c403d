"""A process forked while one of the run's signal handlers is installed (a multiprocessing
worker: the pool forks new ones after a crash, or a new pool after a timeout) dies of SIGTERM as
usual. A handler of ours left in it took ``Pool.terminate()``'s SIGTERM for the user's and asked
the whole run to stop ("a worker stopped the run", exit code 2, in CI). Two guards: the fork hook
drops our handlers in the child, and each handler, run in a process other than the one that
installed it, lets the signal do what it does by default."""

from __future__ import annotations

import os
import signal
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from pytest_parproc.plugin import signals
from pytest_parproc.plugin.signals import (
    InterruptGate,
    graceful_interrupts,
    main_thread_limit,
    sigterm_as_interrupt,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")


def _child_death(signum: int, hook_skipped: bool = False) -> int | None:
    """Fork, send ``signum`` to the child; the signal that ended it (None: it exited).
    ``hook_skipped``: as if the fork hook that drops our handlers had not run in the child."""
    parent, handler = os.getpid(), signal.getsignal(signum)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # (3.12: fork in a threaded process)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            if hook_skipped:
                signals._owner = parent
                signal.signal(signum, handler)
            os.kill(os.getpid(), signum)
            time.sleep(0.5)  # (a Python handler runs here)
            os._exit(0)
        except BaseException:
            os._exit(7)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else None


def _gate() -> AbstractContextManager[None]:
    return InterruptGate().installed()


HANDLERS: dict[str, Callable[[], AbstractContextManager[None]]] = {
    "sigterm_as_interrupt": sigterm_as_interrupt,
    "graceful_interrupts": lambda: graceful_interrupts(lambda name: None, 30.0),
    "gate inside graceful_interrupts": _gate,
}


@pytest.mark.parametrize("hook_skipped", [False, True], ids=["fork hook", "handler guard"])
@pytest.mark.parametrize("name", list(HANDLERS))
def test_a_process_forked_meanwhile_dies_of_sigterm(name: str, hook_skipped: bool) -> None:
    outer = graceful_interrupts(lambda name: None, 30.0) if "inside" in name else _nothing()
    with outer, HANDLERS[name]():
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # ours, here
        assert _child_death(signal.SIGTERM, hook_skipped) == signal.SIGTERM


@pytest.mark.parametrize("hook_skipped", [False, True], ids=["fork hook", "handler guard"])
def test_a_process_forked_under_a_time_limit_dies_of_sigalrm(hook_skipped: bool) -> None:
    with main_thread_limit(60.0, lambda: "limit"):
        assert _child_death(signal.SIGALRM, hook_skipped) == signal.SIGALRM


def test_the_handlers_are_forgotten_once_the_blocks_end() -> None:
    before = set(signals._ours)
    with (
        graceful_interrupts(lambda name: None, 30.0),
        _gate(),
        main_thread_limit(60.0, lambda: "limit"),
    ):
        assert len(signals._ours) == len(before) + 4
    assert signals._ours == before


class _nothing(AbstractContextManager[None]):
    def __exit__(self, *exc_info: object) -> None:
        return None


@pytest.mark.parametrize("name", list(HANDLERS))
def test_a_sigterm_sent_as_the_child_starts_is_not_lost(name: str) -> None:
    """Sent before the child's fork hooks have run, the signal would reach our inherited
    handler, which CPython's own after-fork code throws away: the child lived on."""
    outer = graceful_interrupts(lambda name: None, 30.0) if "inside" in name else _nothing()
    deaths = []
    with outer, HANDLERS[name]():
        for _ in range(10):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                time.sleep(3)
                os._exit(7)
            os.kill(pid, signal.SIGTERM)  # at once: the child is still in its fork hooks
            _, status = os.waitpid(pid, 0)
            deaths.append(os.WTERMSIG(status) if os.WIFSIGNALED(status) else None)
    assert deaths == [signal.SIGTERM] * 10
