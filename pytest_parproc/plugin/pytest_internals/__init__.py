"""The only place that touches private pytest API; each use says why it cannot be avoided.
``tests/plugin/test_pytest_internals.py`` checks every name used here: a pytest release that
changes one fails that test loudly instead of breaking runs in subtle ways."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..messages import ParamKey


def prepare_config(args: Sequence[str], plugins: Sequence[object]) -> pytest.Config:
    """A config built from command-line arguments as ``pytest.main(args)`` builds it (ini file,
    ``addopts``, ``PYTEST_ADDOPTS``, plugins, initial conftests), as a worker needs it: no
    public constructor does all that (``Config.fromdictargs`` skips ``addopts``)."""
    from _pytest.config import _prepareconfig

    return _prepareconfig(list(args), list(plugins))


def configure(config: pytest.Config) -> None:
    """Run ``pytest_configure`` as ``pytest.main`` does (``Config._do_configure``): a worker's
    tests run between engine tasks, not inside one ``pytest_cmdline_main`` call."""
    config._do_configure()


def unconfigure(config: pytest.Config) -> None:
    """Run ``pytest_unconfigure`` and the config's cleanups (``Config._ensure_unconfigure``)."""
    config._ensure_unconfigure()


def parametrization_key(item: pytest.Item) -> ParamKey | None:
    """Where a parametrized test sits: its node id without the ``[...]`` part, and the index of
    each parameter value in its ``parametrize`` list (``item.callspec.indices``).

    Ids built from values that differ between processes (``datetime.now()``, addresses)
    differ in each worker; the indices do not. ``callspec.indices`` is undocumented."""
    indices = _callspec_indices(item)
    if indices is None:
        return None
    nodeid = item.nodeid
    base = nodeid[: nodeid.find("[", nodeid.rfind("::"))] if nodeid.endswith("]") else nodeid
    return base, tuple(sorted((str(name), int(index)) for name, index in indices.items()))


def _callspec_indices(item: pytest.Item) -> dict[str, int] | None:
    indices = getattr(getattr(item, "callspec", None), "indices", None)
    return indices if isinstance(indices, dict) else None


Codec = tuple[Callable[[pytest.TestReport], Any], Callable[[Any, Any], Any]]


def report_codec(config: pytest.Config) -> Codec:
    """A worker's ``pytest_report_to_serializable``, the main process's ``_from_serializable``.
    Where only pytest's own plugins (``reports``, ``subtests``) implement both, a plain test
    report travels as itself, pickled (no ``_to_json``/``_from_json`` round: half the cost, three
    times a test), and data goes straight to ``TestReport._from_json``, with the item's node id
    as pytest 9.2+ keeps it (``Node._id``, parsed once at collection)."""
    hook = config.hook

    def dump(report: pytest.TestReport) -> dict[str, Any]:
        return hook.pytest_report_to_serializable(config=config, report=report)  # type: ignore[no-any-return]

    def load(data: Any, item: pytest.Item) -> Any:
        if isinstance(data, pytest.TestReport):  # from a worker whose plugins allowed it
            return data
        return hook.pytest_report_from_serializable(config=config, data=data)

    def dump_directly(report: pytest.TestReport) -> Any:
        return report if type(report) is pytest.TestReport else dump(report)

    def load_directly(data: Any, item: pytest.Item) -> Any:
        if type(data) is pytest.TestReport:
            return data
        if data.get("$report_type") != "TestReport" or "_report_type" in data:
            return load(data, item)
        if data.get("nodeid") == item.nodeid:
            data["nodeid"] = getattr(item, "_id", data["nodeid"])
        return pytest.TestReport._from_json(data)

    def own(name: str) -> bool:
        impls: list[Any] = getattr(getattr(hook, name, None), "get_hookimpls", list)()
        names = {getattr(impl.plugin, "__name__", "") for impl in impls}
        return bool(impls) and names <= {"_pytest.reports", "_pytest.subtests"}

    both = own("pytest_report_to_serializable") and own("pytest_report_from_serializable")
    return (dump_directly, load_directly) if both else (dump, load)


def main_basetemp(config: pytest.Config) -> Path | None:
    """The main process's base temporary directory, made now (None under ``-p no:tmpdir``), where
    each worker gets one of its own; the config holds the factory (``_tmp_path_factory``)."""
    factory: pytest.TempPathFactory | None = getattr(config, "_tmp_path_factory", None)
    return None if factory is None else factory.getbasetemp()


# -- process workers forked after collection: the main process's session made a worker's own --
def silence_terminal(config: pytest.Config, file: Any) -> None:
    """Point the terminal reporter at ``file`` (the main process reports): it stays registered,
    only its writer changes (``TerminalReporter._tw``, built by ``create_terminal_writer``)."""
    from _pytest.config import create_terminal_writer

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter._tw = create_terminal_writer(config, file)


def restart_global_capture(config: pytest.Config) -> None:
    """Give this process captures of its own: after a fork, the capture manager's temporary files
    (one offset for all) are shared with the parent and other workers, each would read and cut
    the others' output. ``_global_capturing`` is stopped without reading and replaced."""
    capman = config.pluginmanager.get_plugin("capturemanager")
    if capman is None or capman._global_capturing is None:
        return
    # Stopping restores the main process's 0, 1, 2; this worker's own are put back after.
    own = {fd: os.dup(fd) for fd in (0, 1, 2)}
    try:
        capman._global_capturing.stop_capturing()  # closes this process's copies only
    finally:
        for fd, copy in own.items():
            os.dup2(copy, fd)
            os.close(copy)
    capman._global_capturing = None
    capman.start_global_capturing()
    capman.suspend_global_capture()


def use_basetemp(config: pytest.Config, basetemp: str) -> None:
    """Give ``tmp_path`` a base directory of this worker's own (``config._tmp_path_factory``,
    rebuilt by ``TempPathFactory.from_config``, marked private), as ``--basetemp`` would."""
    if getattr(config, "_tmp_path_factory", None) is None:
        return
    config.option.basetemp = basetemp
    factory = pytest.TempPathFactory.from_config(config, _ispytest=True)
    config._tmp_path_factory = factory  # type: ignore[attr-defined]
    legacy_tmpdir_factory(config, factory)


def legacy_tmpdir_factory(config: pytest.Config, factory: pytest.TempPathFactory) -> None:
    """``tmpdir_factory`` and ``tmpdir`` (pytest's legacypath plugin) wrap the factory that
    existed at configure time, kept as ``config._tmpdirhandler`` (private, "set dynamically by
    pytest_configure"): wrap the worker's own, or the two factories give different folders and
    ``tmpdir`` users of different workers share one."""
    if getattr(config, "_tmpdirhandler", None) is None:
        return  # the legacypath plugin is disabled (-p no:legacypath) or the tmpdir plugin is
    config._tmpdirhandler = pytest.TempdirFactory(  # type: ignore[attr-defined]
        factory, _ispytest=True
    )


def teardown_towards(session: pytest.Session, nextitem: pytest.Item | None) -> None:
    """What a test's protocol would have torn down had it ended (``session._setupstate``,
    pytest's ``SetupState.teardown_exact``): where it was cut short outside the test's phases,
    the next test must not find it still set up."""
    session._setupstate.teardown_exact(nextitem)


def teardown_all(session: pytest.Session) -> None:
    """Tear down every fixture still set up, as pytest's ``pytest_sessionfinish`` does: a forked
    worker runs no session-finish hook (they are the main process's plugins': files, cache)."""
    session._setupstate.teardown_exact(None)


# -- the threading backend: each function replaces one piece of pytest's per-process state for
# the concurrent part of a run, and returns what puts it back (plugin/threads/__init__.py).
def parameters(item: pytest.Item) -> dict[str, tuple[int, int]]:
    """Each parameter of a test: the index of its value (``item.callspec.indices``) and the value's
    ``id`` (``callspec.params``; two indirect parametrizations' first values both have index 0)."""
    indices = _callspec_indices(item) or {}
    values = getattr(getattr(item, "callspec", None), "params", None) or {}
    return {str(name): (int(index), id(values.get(name))) for name, index in indices.items()}


def fixture_graph(item: pytest.Item) -> Mapping[str, Sequence[Any]]:
    """The fixture definitions a test can see, by name (``item._fixtureinfo.name2fixturedefs``):
    which fixtures a fixture depends on, so that it gets one instance per parameter of those."""
    info = getattr(item, "_fixtureinfo", None)
    graph = getattr(info, "name2fixturedefs", None)
    return graph if isinstance(graph, Mapping) else {}


def _replace(owner: Any, name: str, value: Any) -> Callable[[], None]:
    """Set ``owner.name`` to ``value``; returns what puts the original back."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    return lambda: setattr(owner, name, original)


def replace_setup_state(session: pytest.Session, state: object) -> Callable[[], None]:
    """``session._setupstate`` holds one stack of set-up nodes, for one test at a time; every
    set-up, finalizer and teardown of pytest goes through it: the threads get a concurrent one."""
    return _replace(session, "_setupstate", state)


#: Given pytest's function, the function to use in its place.
Wrapper = Callable[[Callable[..., Any]], Callable[..., Any]]


def run_protocol(item: pytest.Item) -> list[pytest.TestReport]:
    """Set-up, call and teardown of one test, returning its reports instead of logging them
    (``_pytest.runner.runtestprotocol(log=False)``): the main thread replays them, so that
    reporting plugins are only ever called from it."""
    from _pytest.runner import runtestprotocol

    return runtestprotocol(item, log=False, nextitem=None)


def replace_current_test_var(update: Callable[[Any, str | None], None]) -> Callable[[], None]:
    """pytest sets PYTEST_CURRENT_TEST in ``_pytest.runner._update_current_test_var``, and
    deletes it with ``os.environ.pop(name)``: a second thread's delete raises KeyError."""
    import _pytest.runner as runner

    return _replace(runner, "_update_current_test_var", update)


def override_capture(
    capman: Any,
    *,
    item_capture: Wrapper,
    set_fixture: Wrapper,
    unset_fixture: Wrapper,
    disabled: Wrapper,
    sys_capture: Callable[[Any, bool], Callable[..., Any]],
) -> Callable[[], None]:
    """The capture manager captures the whole process (``item_capture``) and holds one capture
    fixture (``set_fixture``); ``capsys``'s ``SysCapture`` classes swap ``sys.stdout`` itself.
    Each is replaced (on the instance, or in the module) by one acting per test thread."""
    import _pytest.capture as capture

    names = ("item_capture", "set_fixture", "unset_fixture", "global_and_fixture_disabled")
    originals = {name: getattr(capman, name) for name in names}
    classes = {"SysCapture": capture.SysCapture, "SysCaptureBinary": capture.SysCaptureBinary}
    capman.item_capture = item_capture(originals["item_capture"])
    capman.set_fixture = set_fixture(originals["set_fixture"])
    capman.unset_fixture = unset_fixture(originals["unset_fixture"])
    capman.global_and_fixture_disabled = disabled(originals["global_and_fixture_disabled"])
    capture.SysCapture = sys_capture(classes["SysCapture"], False)  # type: ignore[assignment, misc]
    capture.SysCaptureBinary = sys_capture(classes["SysCaptureBinary"], True)  # type: ignore[assignment, misc]

    def restore() -> None:
        for name in names:
            capman.__dict__.pop(name, None)
        for name, cls in classes.items():
            setattr(capture, name, cls)

    return restore


def override_log_capture(plugin: Any, runtest_for: Callable[..., Any]) -> Callable[[], None]:
    """The logging plugin adds its handlers to the root logger around each phase, for the whole
    process (``LoggingPlugin._runtest_for``): replaced on the instance by what ``runtest_for``
    makes of it, a context manager (pytest 8 uses the method with ``yield from``: adapted)."""
    import inspect

    original = plugin.__class__._runtest_for
    replacement = runtest_for(original.__get__(plugin))
    if inspect.isgeneratorfunction(original):

        def as_generator(item: Any, when: str) -> Any:
            managed = replacement(item, when)
            if hasattr(managed, "__enter__"):
                with managed:
                    yield
            else:  # pytest's own generator, on a thread that runs no test
                yield from managed

        plugin._runtest_for = as_generator
    else:
        plugin._runtest_for = replacement

    def restore() -> None:
        plugin.__dict__.pop("_runtest_for", None)

    return restore


def replace_catch_warnings(replacement: Callable[..., Any]) -> Callable[[], None]:
    """``_pytest.warnings.catch_warnings_for_item`` sets the process's filters around each test:
    replaced in its module, where the hooks look it up; ``replacement`` gets the original."""
    import _pytest.warnings as pytest_warnings

    original = pytest_warnings.catch_warnings_for_item
    return _replace(pytest_warnings, "catch_warnings_for_item", replacement(original))


def thread_local_assertion_hooks() -> Callable[[], None]:
    """``_pytest.assertion.util``'s ``_reprcompare``, ``_assertion_pass``, ``_config``, set
    around each test, read by rewritten asserts: made per thread (properties of a ModuleType)."""
    from _pytest.assertion import util

    names = ("_reprcompare", "_assertion_pass", "_config")
    local = threading.local()
    defaults = {name: getattr(util, name) for name in names}

    def attribute(name: str) -> property:
        def get(module: object) -> Any:
            return getattr(local, name, defaults[name])

        def set_(module: object, value: Any) -> None:
            setattr(local, name, value)

        return property(get, set_)

    original_type = type(util)
    module_type = type("ThreadLocalHooks", (original_type,), {n: attribute(n) for n in names})
    util.__class__ = module_type

    def restore() -> None:
        util.__class__ = original_type

    return restore


def phase_log_handler(item: pytest.Item, when: str) -> Any:
    """A handler for one phase's log records, stored where ``caplog`` and the logging plugin's
    own teardown look for it (``_pytest.logging``'s ``LogCaptureHandler`` and stash keys)."""
    from _pytest.logging import LogCaptureHandler, caplog_handler_key, caplog_records_key

    handler = LogCaptureHandler()
    item.stash.setdefault(caplog_records_key, {})[when] = handler.records
    item.stash[caplog_handler_key] = handler
    return handler


def configured_warning_filters(config: pytest.Config, item: pytest.Item | None) -> list[Any]:
    """The warning filters pytest sets for a test (ini, ``-W``, marks), read by entering pytest's
    ``catch_warnings_for_item`` once: the threading runner applies them per thread itself."""
    import warnings

    from _pytest.warnings import catch_warnings_for_item

    with catch_warnings_for_item(config, config.hook, "runtest", item):
        return list(warnings.filters)


def junit_xml(config: pytest.Config, replace: Any = None) -> Any | None:
    """``--junitxml``'s ``LogXML`` or None, where ``record_testsuite_property`` and its kin find
    it (``xml_key``); ``replace`` puts a worker's recorder there (``compat.junitxml``)."""
    from _pytest.junitxml import xml_key

    if replace is not None:
        config.stash[xml_key] = replace
    return config.stash.get(xml_key, None)


def log_handlers(config: pytest.Config) -> list[tuple[logging.Handler, int, bool]]:
    """The log file's and live logging's handlers in use (``LoggingPlugin.log_file_handler``,
    ``log_cli_handler``, ``_log_cli_enabled``, ...): (handler, level, whether it is live)."""
    plugin = config.pluginmanager.get_plugin("logging-plugin")
    if plugin is None:
        return []
    found: list[tuple[logging.Handler, int, bool]] = []
    if plugin.log_file_handler.baseFilename != os.path.abspath(os.devnull):
        found.append((plugin.log_file_handler, plugin.log_file_level or 0, False))
    if plugin._log_cli_enabled():
        found.append((plugin.log_cli_handler, plugin.log_cli_level or 0, True))
    return found


def set_live_log_phase(handler: logging.Handler, when: str) -> None:
    handler.set_when(when)  # type: ignore[attr-defined]  # its "live log <when>" heading


_current = threading.current_thread


def live_log_phases_from(thread: threading.Thread, handler: Any) -> Callable[[], None]:
    """Live logging's "live log <phase>" headings (``_LiveLoggingStreamHandler.set_when``,
    ``reset``): only ``thread``'s calls (the replay's) count while tests run on others."""
    names = [name for name in ("set_when", "reset") if hasattr(handler, name)]
    for name in names:
        method = getattr(handler, name)
        setattr(handler, name, lambda *a, m=method: m(*a) if _current() is thread else None)

    def restore() -> None:
        for name in names:
            handler.__dict__.pop(name, None)

    return restore
