"""The pytest plugin (entry point ``parproc``): options, activation, the worker-id fixture.

Hook wiring only; it chooses a runner, imported when a run needs it:

- ``processes/``: tests in worker processes, forked after collection or collecting for
  themselves (backends ``loky``, ``multiprocessing`` and registered process backends);
- ``threads/``: tests in threads of this process (backend ``threading``).

What both runners use sits beside them (``options``, ``names``, ``run``, ``stopping``,
``messages``, ``replay``, ``timing``, ``signals``, ``pytest_internals``) and imports from
neither.
"""

from __future__ import annotations

import pytest

from .. import workerinfo
from . import names, options
from .compat import xdist
from .report import options as report_options
from .shared import marking as shared_marking

_serial_reason_key = pytest.StashKey[str]()

#: Options that need the tests in this process, with why.
_SERIAL_OPTIONS = (
    ("usepdb", "--pdb needs the terminal"),
    ("trace", "--trace needs the terminal"),
    ("setuponly", "--setup-only prints from the process that runs the fixtures"),
    ("setupplan", "--setup-plan prints from the process that runs the fixtures"),
)


#: Options that need the tests in this process, under the threading backend only.
_SERIAL_OPTIONS_THREADING = (
    ("setupshow", "--setup-show prints as each fixture is set up, which threads would mix"),
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)
    names.add_ini(parser)
    shared_marking.add_options(parser)
    report_options.add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Shared fixtures named by the user exist; none of those the selected tests use depends on
    anything narrower (in every run: a definition that a parallel run refuses is wrong in a
    serial one too). The plan made on the way is the run's."""
    config = session.config
    if config.pluginmanager.has_plugin(names.WORKER_PLUGIN_NAME):
        return  # a worker's own session: the main process checked
    shared_names = shared_marking.configured_names(config)
    shared_marking.check_names(session, shared_names)
    from .shared.plan import PLAN_KEY, plan_and_check

    config.stash[PLAN_KEY] = plan_and_check(session, shared_names)


@pytest.hookimpl(trylast=True)  # after conftest files had their say (e.g. registered a backend)
def pytest_configure(config: pytest.Config) -> None:
    names.register_markers(config)
    xdist.register_fixtures(config)
    if config.pluginmanager.has_plugin(names.WORKER_PLUGIN_NAME):
        return  # this is a worker's own session
    resolved = options.resolve(config)
    shown = report_options.resolve(config)
    if shown.records or (resolved.active and shown.progress != "off"):
        from .report.view import register

        register(config, shown)
    if not resolved.active:
        return
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError(
            f"{resolved.sources.get('n_jobs', '--n-jobs')} asks pytest-parproc to run tests in "
            "parallel, and -n asks pytest-xdist to: use one of them"
        )
    threading = resolved.backend == options.THREADING
    for name, limit in (
        ("max_tasks_per_worker", resolved.max_tasks_per_worker),
        ("max_worker_memory", resolved.max_worker_memory),
    ):
        if limit is not None and resolved.backend != "loky":
            raise pytest.UsageError(
                f"{resolved.sources[name]}: recycling workers needs the loky backend (its "
                f"workers can leave between tests), not {resolved.backend!r}"
            )
    if resolved.timeout_s is not None and not threading and _faulthandler_timeout(config) > 0:
        raise pytest.UsageError(
            f"{resolved.sources['timeout']} and the faulthandler_timeout ini option both need "
            "faulthandler's one timer (pytest's would cancel ours at every test): use one of them"
        )
    for name, reason in _SERIAL_OPTIONS + (_SERIAL_OPTIONS_THREADING if threading else ()):
        if getattr(config.option, name, False):
            config.stash[_serial_reason_key] = reason
            return
    if threading:
        from .threads.controller import ThreadController

        config.pluginmanager.register(ThreadController(config, resolved), names.CONTROLLER_NAME)
        return
    from .processes.controller import ProcessController

    config.pluginmanager.register(ProcessController(config, resolved), names.CONTROLLER_NAME)


def _faulthandler_timeout(config: pytest.Config) -> float:
    try:
        return float(config.getini("faulthandler_timeout") or 0)
    except (ValueError, TypeError):
        return 0.0  # pytest's faulthandler plugin reports a bad value itself


def pytest_report_header(config: pytest.Config) -> str | None:
    reason = config.stash.get(_serial_reason_key, None)
    if reason is None:
        return None
    return f"parproc: tests run in this process ({reason})"


@pytest.fixture(scope="session")
def parproc_worker_id() -> str:
    """The id of the worker process running the test: ``w0``, ``w1``, ...; ``main`` when not
    distributed, and with ``--par-backend=threading``, whose threads share session fixtures
    (``pytest_parproc.worker_id()`` in a test gives its thread's id there)."""
    return workerinfo.process_worker_id()
