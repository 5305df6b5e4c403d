"""pytest-rerunfailures: failed tests rerun in the workers as serially, every rerun reported
(checked against pytest-rerunfailures 16.7).

Where pytest-xdist is installed, pytest-rerunfailures' ``pytest_configure`` starts a status
server in the controller (a thread waiting in ``accept`` on 127.0.0.1, for reruns of tests
whose xdist worker crashed) and connects each worker to it through
``workerinput["sock_port"]`` and ``["statusdb_token"]``. Here:

- a worker that collects gets those keys (``worker_input``), as xdist's
  ``pytest_configure_node`` would give them; without them it fails to configure;
- the server's thread waits for connections and holds nothing a forked child could need, so it
  does not keep the workers from being forked (``declare_idle_threads``); a forked worker keeps
  the counts in its copy of the server's table, as the plugin does in its controller;
- in a worker, the plugin logs a test's intermediate "rerun" reports only when it finds
  pytest-xdist 1.20 or later installed (older xdist ended a node at the first report): here
  the reports travel back like any other, so they are logged wherever xdist is not installed
  (``start_in_worker``);
- on threads, the plugin's protocol (which replaces pytest's) takes pytest's setup state apart
  between attempts, which tests running beside it share: when any test would be rerun, pytest's
  own loop runs the tests one after another in the main thread, and the summary says why
  (``whole_run_reason``).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

from ...parallel.resources import allow_fork_beside

MODULE = "pytest_rerunfailures"


def _server(config: pytest.Config) -> Any | None:
    """The plugin's status server in the main process, or None."""
    database = getattr(config, "failures_db", None)
    if type(database).__name__ != "ServerStatusDB" or type(database).__module__ != MODULE:
        return None
    return database


def worker_input(config: pytest.Config) -> dict[str, Any]:
    server = _server(config)
    if server is None:
        return {}
    return {"sock_port": server.sock_port, "statusdb_token": server.token}


def declare_idle_threads(config: pytest.Config) -> None:
    """The server's accepting thread is safe to fork beside (before any worker connects; each
    connection gets a thread of its own, which is not declared)."""
    if _server(config) is None:
        return
    for thread in threading.enumerate():
        # Python names a thread after its target: "Thread-1 (run_server)".
        if thread.daemon and thread.name.endswith("(run_server)"):
            allow_fork_beside(thread)


def start_in_worker(config: pytest.Config) -> None:
    """In a worker: log intermediate rerun reports, as with a recent pytest-xdist."""
    module = sys.modules.get(MODULE)
    if module is not None and hasattr(module, "works_with_current_xdist"):
        setattr(module, "works_with_current_xdist", lambda: True)  # noqa: B010 - a module


def whole_run_reason(items: list[pytest.Item]) -> str | None:
    """On threads: why the run's tests run one after another in the main thread."""
    module = sys.modules.get(MODULE)
    count = getattr(module, "get_reruns_count", None)
    if count is None or not items or not items[0].config.pluginmanager.has_plugin("rerunfailures"):
        return None
    rerun = sum(1 for item in items if count(item))
    if not rerun:
        return None
    return (
        f"pytest-rerunfailures reruns {rerun} of them when they fail, and its protocol needs "
        "pytest's own setup state, which concurrent tests cannot share"
    )
