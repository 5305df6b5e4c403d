"""A worker's pytest session, built one of two ways: adopted from the main process's collected
session (a worker forked after collection), or configured and collected anew from the main
process's arguments (any other worker)."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from .. import compat, pytest_internals
from ..compat import xdist
from ..messages import RunSpec
from ..names import WORKER_PLUGIN_NAME
from . import inherit
from .collector import ReportCollector

#: Selection is the main process's job; a worker collects everything its arguments name and
#: looks tests up by node id, so a stale ``--lf`` cache or ``-k`` cannot make them disagree.
_SELECTION_OFF: dict[str, object] = {
    "keyword": "",
    "markexpr": "",
    "deselect": [],
    "lf": False,
    "failedfirst": False,
    "newfirst": False,
    "stepwise": False,
    "stepwise_skip": False,
}

#: What only the main process does: write the report files from the replayed reports (a worker
#: would overwrite them with its share: --junitxml, pytest-html, pytest-reportlog, --log-file),
#: and clear the cache once, before the run (--cache-clear). pytest-json-report stays on: in a
#: worker (``config.workerinput``) it only adds details to reports (``compat.json_report``).
_MAIN_PROCESS_ONLY: dict[str, object] = {
    "xmlpath": None,
    "htmlpath": None,
    "report_log": None,
    "log_file": os.devnull,
    "cacheclear": False,
}


def adopt_session(
    inherited: pytest.Session,
    spec: RunSpec,
    worker_id: str,
    collector: ReportCollector,
    terminal_sink: Any,
    basetemp: str | None,
) -> pytest.Session:
    """The main process's session, inherited through fork, made this worker's: its reports go
    to ``collector``, its terminal output to ``terminal_sink``."""
    inherit.adopt(inherited, terminal_sink, basetemp)
    _attach(inherited.config, collector, spec, worker_id)
    compat.start_in_forked_worker(inherited.config)
    return inherited


def build_session(
    spec: RunSpec,
    worker_id: str,
    collector: ReportCollector,
    terminal_sink: Any,
    basetemp: str | None,
) -> pytest.Session:
    """A session configured from the main process's arguments and collected, in the order of
    pytest's own ``wrap_session``: configure, session start, collection. Before plugins are
    configured, the config gets what an xdist worker's has (``compat.xdist``)."""
    config = pytest_internals.prepare_config(spec.args, [])
    _attach(config, collector, spec, worker_id)
    option = config.option
    if basetemp is not None:
        option.basetemp = basetemp
    for name, value in {**_MAIN_PROCESS_ONLY, **_SELECTION_OFF}.items():
        if hasattr(option, name):
            setattr(option, name, value)
    session = pytest.Session.from_config(config)
    session.exitstatus = pytest.ExitCode.OK
    # The terminal reporter is created in pytest_configure and writes to sys.stdout as it is
    # then; the main process does all the reporting, so a worker's goes to the sink. Tests
    # still print to the real stdout (it reaches the terminal under -s).
    real_stdout = sys.stdout
    sys.stdout = terminal_sink
    try:
        pytest_internals.configure(config)
    finally:
        sys.stdout = real_stdout
    config.hook.pytest_sessionstart(session=session)
    config.hook.pytest_collection(session=session)
    # Collection errors are the main process's to count (a worker may collect modules the main
    # process left out, --lf say); the worker counts its tests' failures only.
    session.testsfailed = 0
    session.shouldfail = False
    session.shouldstop = False
    return session


def _attach(
    config: pytest.Config, collector: ReportCollector, spec: RunSpec, worker_id: str
) -> None:
    """Make ``config`` this worker's: its reports go to ``collector``, and it looks like an
    xdist worker's to other plugins (``compat.xdist``)."""
    config.pluginmanager.register(collector, WORKER_PLUGIN_NAME)
    collector.config = config
    xdist.attach(config, worker_id, spec.n_workers, spec.run_id, spec.worker_input)
    compat.start_in_worker(config)
