"""Process workers forked after collection take over the main process's collected session.

The main process offers its session before it starts the workers; a worker forked from it
finds the offer in its copy of this module and makes that session its own: no new
interpreter, no imports, no second collection. A worker started any other way (fork+exec, a
replacement after a crash, a later round) finds no offer and builds a session of its own.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import pytest

from ...parallel.resources import threads_blocking_fork
from .. import compat, pytest_internals
from ..compat import coverage
from ..names import CONTROLLER_NAME

#: Plugins that write the main process's report files as reports arrive or at session end; a
#: forked worker drops its copies (the main process writes them from the replayed reports).
#: Matched by (module, class name) along the plugin's class hierarchy.
MAIN_PROCESS_PLUGINS = frozenset(
    {
        ("_pytest.junitxml", "LogXML"),
        ("pytest_reportlog.plugin", "ReportLogPlugin"),
        ("pytest_html.basereport", "BaseReport"),
        ("pytest_jsonreport.plugin", "JSONReport"),
        # (this plugin's own: the run's view and its recorder)
        ("pytest_parproc.plugin.report.view", "RunView"),
        ("pytest_parproc.plugin.report.view", "_Recorder"),
    }
)


@dataclass(frozen=True)
class _Offer:
    run_id: str
    pid: int
    session: pytest.Session


_offer: _Offer | None = None


def fork_blocker(config: pytest.Config) -> str | None:
    """Why workers may not inherit this process's session now, or None if they may."""
    if not hasattr(os, "fork"):
        return "this platform has no fork"
    compat.declare_idle_threads(config)
    busy, native = threads_blocking_fork()
    if busy:
        return f"other threads run in this process ({', '.join(busy)}), and forking them is unsafe"
    if native:
        return (
            f"{native} native thread{'s' if native > 1 else ''} (started by an extension: "
            "OpenMP, a BLAS, ...) run in this process, and forking them is unsafe"
        )
    return coverage.fork_blocker(config)


def offer(run_id: str, session: pytest.Session) -> None:
    """Make ``session`` the one that workers forked from now on take over.

    Everything built so far (the collected tests, imported modules) also leaves the cyclic
    garbage collector's care (``gc.freeze``): this process runs no test, and its collector's
    passes over those objects while it replays reports, and once more at exit, cost about a
    sixth of a 2,000-test run here. They stay frozen: a pytest process ends with its run.
    """
    global _offer
    _offer = _Offer(run_id, os.getpid(), session)
    gc.freeze()


def withdraw() -> None:
    global _offer
    _offer = None


def take(run_id: str) -> pytest.Session | None:
    """In a worker forked after ``offer``: the offered session, once. Otherwise None (this is
    the main process, another run's worker, or the session was taken already)."""
    global _offer
    found = _offer
    if found is None or found.run_id != run_id or found.pid == os.getpid():
        return None
    _offer = None
    return found.session


def adopt(session: pytest.Session, terminal_sink: Any, basetemp: str | None) -> None:
    """Turn the inherited copy of the main process's session into this worker's: its reports
    go to the collector (registered by the caller), not to the terminal or report files."""
    # The main process froze what it had built (see ``offer``); tests here see the garbage
    # collector as in a serial run.
    gc.unfreeze()
    config = session.config
    manager = config.pluginmanager
    controller = manager.get_plugin(CONTROLLER_NAME)
    if controller is not None:
        manager.unregister(controller)
    for plugin in manager.get_plugins():
        if _writes_main_reports(plugin):
            manager.unregister(plugin)
    pytest_internals.silence_terminal(config, terminal_sink)
    pytest_internals.restart_global_capture(config)
    if basetemp is not None:
        pytest_internals.use_basetemp(config, basetemp)
    # Counted afresh: the main process counts collection errors and every worker's failures.
    session.testsfailed = 0
    session.shouldfail = False
    session.shouldstop = False


def _writes_main_reports(plugin: object) -> bool:
    return any(
        (kind.__module__, kind.__name__) in MAIN_PROCESS_PLUGINS for kind in type(plugin).__mro__
    )
