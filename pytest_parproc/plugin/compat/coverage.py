"""pytest-cov: every worker process measures the tests it runs and saves its data where the main
process's pytest-cov combines it, as under pytest-xdist (checked against pytest-cov 7.1 and
coverage 7.17).

pytest-cov runs its ``Central`` controller in the main process (``--n-jobs`` is not xdist's
``-n``): it measures collection, and at the end saves its own data and combines every
``.coverage.*`` file of the data folder. Each worker runs pytest-cov's ``DistWorker`` (it sees
``config.workerinput``, ``compat.xdist``), which saves the worker's data under coverage's
per-process suffix (host, pid, random) when the worker ends its session:

- a worker that collects builds its session from the main process's arguments plus
  ``--cov-append``: pytest-cov starts a controller while the configuration is made, and without
  it that controller would erase the data files workers that ended earlier had saved (a
  replacement worker, a later round). pytest-cov's ``pytest_sessionstart`` then starts the
  ``DistWorker`` from the keys its ``pytest_configure_node`` gives xdist's workers;
- a forked worker inherits the main process's running ``Central``: it stops that one (its data
  is the main process's to save) and starts a ``DistWorker`` in its place;
- every worker ends it (``finish_in_worker``) when its session ends: recycled and replacement
  workers save what they measured too. A worker that dies loses its data, as a crashed serial
  run does.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

#: pytest-cov's plugin object, registered under this name when it measures.
PLUGIN_NAME = "_cov"
#: pytest-cov's plugin for ``--cov-context=test``, which holds the controller it switches.
CONTEXTS_NAME = "_cov_contexts"


def _measuring(config: pytest.Config) -> Any | None:
    """pytest-cov's plugin, when it measures in this process."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None or getattr(plugin, "_disabled", False):
        return None
    if getattr(plugin, "cov_controller", None) is None:
        return None
    return plugin


def fork_blocker(config: pytest.Config) -> str | None:
    """Why forked workers could not measure (pytest-cov of an unknown shape), else None."""
    plugin = _measuring(config)
    if plugin is None:
        return None
    try:
        from pytest_cov.engine import DistWorker  # noqa: F401
    except ImportError:
        return "pytest-cov measures coverage in this process, and has no DistWorker to fork"
    if not hasattr(plugin.cov_controller, "topdir"):
        return "pytest-cov measures coverage in this process, in a way this version cannot fork"
    return None


def worker_args(config: pytest.Config) -> tuple[str, ...]:
    """What a worker that collects adds to the main process's arguments."""
    plugin = _measuring(config)
    options = getattr(plugin, "options", None)
    if options is None or getattr(options, "cov_append", False):
        return ()
    return ("--cov-append",)


def worker_input(config: pytest.Config) -> dict[str, Any]:
    """The keys pytest-cov's ``pytest_configure_node`` gives an xdist worker: where the main
    process runs, so that the worker knows it is collocated and saves its data file there."""
    plugin = _measuring(config)
    topdir = getattr(getattr(plugin, "cov_controller", None), "topdir", None)
    if topdir is None:
        return {}
    return {
        "cov_master_host": socket.gethostname(),
        "cov_master_topdir": topdir,
        "cov_master_rsync_roots": [],
    }


def start_in_forked_worker(config: pytest.Config) -> None:
    """In a worker forked from the main process: measure here, for this worker's data file."""
    plugin = _measuring(config)
    if plugin is None:
        return
    from pytest_cov.engine import DistWorker

    inherited = plugin.cov_controller
    if inherited.cov is not None:
        inherited.cov.stop()  # the main process saves what it measured before the fork
    controller = DistWorker(plugin.options, config, config.workerinput["workerid"])  # type: ignore[attr-defined]
    controller.start()
    plugin.cov_controller = controller
    contexts = config.pluginmanager.get_plugin(CONTEXTS_NAME)
    if contexts is not None:
        contexts.cov_controller = controller


def finish_in_worker(config: pytest.Config) -> None:
    """Stop measuring and save this worker's data (pytest-cov does it in its
    ``pytest_runtestloop``, which a worker does not run)."""
    plugin = _measuring(config)
    if plugin is None:
        return
    controller = plugin.cov_controller
    if getattr(controller, "started", False) and hasattr(controller, "finish"):
        controller.finish()


def alone_reason(config: pytest.Config, item: pytest.Item) -> str | None:
    """Why a test cannot share the process with concurrent tests (the threading backend) because
    of pytest-cov: its per-test contexts and its ``no_cover`` mark act on the whole process."""
    plugin = _measuring(config)
    if plugin is None:
        return None
    if config.pluginmanager.get_plugin(CONTEXTS_NAME) is not None:
        return "measured with --cov-context=test (pytest-cov switches one context per process)"
    if item.get_closest_marker("no_cover") is not None:
        return "marked no_cover (pytest-cov pauses coverage for the whole process)"
    return None
