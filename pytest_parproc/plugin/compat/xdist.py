"""pytest-xdist's worker conventions, so that plugins and conftest files that detect an xdist
worker work unchanged in a pytest-parproc worker process (checked against pytest-xdist 3.8).

In a worker process:

- ``config.workerinput``: ``workerid`` (``gw0``, ``gw1``, ... for our ``w0``, ``w1``, ...),
  ``workercount``, ``testrunuid`` (one per run, the same in every worker), ``mainargv``, and
  the keys other plugins' xdist support expects (``compat.coverage``); ``config.workeroutput``
  is an empty dict. A worker that collects gets them before its plugins are configured, as
  under xdist; a forked worker, when it takes the main process's session over (its plugins
  were configured in the main process, before the fork).
- ``PYTEST_XDIST_WORKER``, ``PYTEST_XDIST_WORKER_COUNT``, ``PYTEST_XDIST_TESTRUNUID``, set before
  the worker's session is built.
- The ``worker_id`` and ``testrun_uid`` fixtures, when pytest-xdist is not installed (its own
  read ``workerinput`` when it is): ``master`` and a fresh id outside worker processes.

xdist's node hooks (``pytest_configure_node``, ``pytest_testnodedown``) are not called: a
plugin's implementation of them expects xdist's own controller (pytest-cov's does). The keys
those hooks would add come from the module of that plugin here.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

WORKER_ENV = "PYTEST_XDIST_WORKER"
WORKER_COUNT_ENV = "PYTEST_XDIST_WORKER_COUNT"
TESTRUNUID_ENV = "PYTEST_XDIST_TESTRUNUID"
#: What xdist's ``worker_id`` fixture gives outside worker processes.
MAIN_ID = "master"


def xdist_id(worker_id: str) -> str:
    """The id xdist would give our worker ``w<k>``: ``gw<k>``."""
    return f"g{worker_id}" if worker_id.startswith("w") else worker_id


def set_environment(worker_id: str, count: int, run_id: str) -> None:
    """xdist's variables, for conftest files and code that read them at import time."""
    os.environ[WORKER_ENV] = xdist_id(worker_id)
    os.environ[WORKER_COUNT_ENV] = str(count)
    os.environ[TESTRUNUID_ENV] = run_id


def attach(
    config: pytest.Config, worker_id: str, count: int, run_id: str, extra: Mapping[str, Any]
) -> None:
    """Make ``config`` look like an xdist worker's: ``workerinput`` and ``workeroutput``."""
    workerinput = {
        **extra,
        "workerid": xdist_id(worker_id),
        "workercount": count,
        "testrunuid": run_id,
        "mainargv": list(sys.argv),
    }
    config.workerinput = workerinput  # type: ignore[attr-defined]
    config.workeroutput = {}  # type: ignore[attr-defined]


class Fixtures:
    """xdist's ``worker_id`` and ``testrun_uid`` fixtures, for runs without pytest-xdist."""

    @pytest.fixture(scope="session")
    def worker_id(self, request: pytest.FixtureRequest) -> str:
        """The id of the worker process running the test, as pytest-xdist names it: ``gw0``,
        ``gw1``, ...; ``master`` outside worker processes (pytest-parproc's threading backend
        included: its threads share session fixtures)."""
        workerinput = getattr(request.config, "workerinput", None)
        return str(workerinput["workerid"]) if workerinput is not None else MAIN_ID

    @pytest.fixture(scope="session")
    def testrun_uid(self, request: pytest.FixtureRequest) -> str:
        """An id of the whole run, the same in every worker process (pytest-xdist's fixture)."""
        workerinput = getattr(request.config, "workerinput", None)
        return str(workerinput["testrunuid"]) if workerinput is not None else uuid.uuid4().hex


def register_fixtures(config: pytest.Config) -> None:
    """Provide xdist's fixtures where pytest-xdist does not."""
    manager = config.pluginmanager
    if not manager.has_plugin("xdist") and not manager.has_plugin("parproc-xdist"):
        manager.register(Fixtures(), "parproc-xdist")
