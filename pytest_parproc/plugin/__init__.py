"""The pytest plugin (entry point ``parproc``): options, activation, the worker-id fixture.

Hook wiring only: ``options`` resolves the settings, ``controller`` runs the tests of the main
process through the engine, ``worker`` is what runs inside each worker process.
"""

from __future__ import annotations

import pytest

from .. import workerinfo
from . import options, serial_lane

#: Registered (under this name) in a worker's own pytest session; the plugin stays passive there.
WORKER_PLUGIN_NAME = "parproc-worker"
CONTROLLER_NAME = "parproc-controller"
#: ``@pytest.mark.parproc_group(name)``: with ``--par-dist=loadgroup``, one worker, in order.
GROUP_MARK = "parproc_group"

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


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)
    serial_lane.add_ini(parser)


@pytest.hookimpl(trylast=True)  # after conftest files had their say (e.g. registered a backend)
def pytest_configure(config: pytest.Config) -> None:
    serial_lane.register_marker(config)
    config.addinivalue_line(
        "markers",
        f"{GROUP_MARK}(name): with --par-dist=loadgroup, the tests of a group run in one "
        "worker, in collection order (pytest-parproc)",
    )
    if config.pluginmanager.has_plugin(WORKER_PLUGIN_NAME):
        return  # this is a worker's own session
    resolved = options.resolve(config)
    if not resolved.active:
        return
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError(
            f"{resolved.sources.get('n_jobs', '--n-jobs')} asks pytest-parproc to run tests in "
            "parallel, and -n asks pytest-xdist to: use one of them"
        )
    threading = resolved.backend == options.THREADING
    for name, limit in (
        ("max_tests_per_worker", resolved.max_tests_per_worker),
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
        from .threads import ThreadController

        config.pluginmanager.register(ThreadController(config, resolved), CONTROLLER_NAME)
        return
    from .controller import Controller

    config.pluginmanager.register(Controller(config, resolved), CONTROLLER_NAME)


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
