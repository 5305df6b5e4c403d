"""The per-process pieces of pytest (and of Python) that the threading backend makes
per-thread for the concurrent part of a run. The package docstring explains the approach."""

from __future__ import annotations

import functools
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest

from .. import pytest_internals
from . import capture, serial_lane, warning_filters


@dataclass
class Isolation:
    """What the concurrent part of a run works with."""

    #: whether tests' output is captured (not with --capture=no)
    capturing: bool
    #: each test's warning filters, by index (None: warnings are not captured)
    filters: dict[int, Any] = field(default_factory=dict)
    #: warnings raised on threads that run no test
    unowned: list[warnings.WarningMessage] = field(default_factory=list)
    router: warning_filters.WarningsRouter | None = None
    #: set when a test was left running on its thread past --par-timeout: pytest's capture and
    #: log-capture methods then keep their per-thread versions after the block (in ``kept``,
    #: for the caller to undo), so that the thread, if it goes on, stays off the capture of
    #: the tests after it (their own versions run on every other thread)
    keep_overrides: bool = False
    kept: ExitStack | None = None


@contextmanager
def isolation(
    config: pytest.Config, items: Sequence[pytest.Item], indices: list[int]
) -> Iterator[Isolation]:
    """For tests ``indices`` of ``items`` to run at the same time: capture, log records,
    warnings and the other per-process state made per thread, until the block ends."""
    plugins = config.pluginmanager
    capman = plugins.getplugin("capturemanager")
    method = str(config.getoption("capture", "fd") or "fd")
    isolated = Isolation(capturing=capman is not None and method != "no")
    isolated.filters = dict.fromkeys(indices)
    with ExitStack() as stack:
        overrides = stack.enter_context(ExitStack())
        saved_hooks = sys.unraisablehook, threading.excepthook
        stack.callback(_restore_hooks, saved_hooks)
        stack.callback(serialize_ast_parse())
        stack.callback(serialize_mktemp())
        if plugins.getplugin("warnings") is not None and not serial_lane.context_aware_warnings():
            base, isolated.filters = _warning_filters(config, items, indices)
            router = isolated.router = warning_filters.WarningsRouter(base)
            isolated.unowned = router.unowned
            stack.enter_context(router.installed())
            stack.callback(
                pytest_internals.replace_catch_warnings(_on_test_threads(_no_catch_warnings))
            )
        if capman is not None:
            overrides.callback(
                pytest_internals.override_capture(
                    capman,
                    item_capture=_on_test_threads(capture.phase_capture),
                    set_fixture=_on_test_threads(capture.set_capture_fixture),
                    unset_fixture=_on_test_threads(capture.unset_capture_fixture),
                    disabled=_on_test_threads(capture.capture_disabled),
                    sys_capture=capture.sys_capture_factory,
                )
            )
            stack.enter_context(
                capture.install_streams(method == "tee-sys", close_stdin=method in ("fd", "sys"))
            )
        logging_plugin = plugins.getplugin("logging-plugin")
        if logging_plugin is not None:
            level = logging_plugin.log_level
            formatter = logging_plugin.formatter

            def phase_log(item: pytest.Item, when: str) -> Any:
                return capture.phase_log(item, when, formatter, level)

            overrides.callback(
                pytest_internals.override_log_capture(logging_plugin, _on_test_threads(phase_log))
            )
            # live logging would mix the threads' records, and the log file's would not be
            # in order per test: both get them as each test's reports are replayed
            detach = [getattr(logging_plugin, "log_cli_handler", None)]
            detach += [handler for handler, _, _ in pytest_internals.log_handlers(config)]
            if detach[0] is not None:  # tests' phases must not head the replay's records
                stack.callback(
                    pytest_internals.live_log_phases_from(threading.current_thread(), detach[0])
                )
            stack.enter_context(
                capture.install_log_router(level, [h for h in detach if h is not None])
            )
        try:
            yield isolated
        finally:
            if isolated.keep_overrides:
                isolated.kept = overrides.pop_all()


def _on_test_threads(replacement: Callable[..., Any]) -> Callable[[Any], Callable[..., Any]]:
    """Given pytest's function, one that calls ``replacement`` on a test thread instead."""
    return lambda original: capture.per_thread(original, replacement)


def _no_catch_warnings(*args: Any, **kwargs: Any) -> Any:
    # a test thread's test has its own filters already (warning_filters.warnings_of_test)
    return nullcontext()


def _warning_filters(
    config: pytest.Config, items: Sequence[pytest.Item], indices: list[int]
) -> tuple[Any, dict[int, Any]]:
    """The filters pytest would set for each test: the same list for tests without
    ``filterwarnings`` marks. Read here, in the main thread, before any test thread starts."""
    base = pytest_internals.configured_warning_filters(config, None)
    found: dict[int, Any] = {}
    for index in indices:
        item = items[index]
        marked = item.get_closest_marker("filterwarnings") is not None
        found[index] = pytest_internals.configured_warning_filters(config, item) if marked else base
    return base, found


def _restore_hooks(saved: tuple[Any, Any]) -> None:
    # pytest < 8.4 swaps these hooks around each phase; threads interleave the swaps.
    sys.unraisablehook, threading.excepthook = saved


#: Python 3.11's ``functools.cached_property`` takes one lock for every instance of a class
_CACHED_PROPERTY_LOCKS = hasattr(functools.cached_property(repr), "lock")


def locations_before_threads(items: Sequence[pytest.Item]) -> None:
    """Where ``cached_property`` locks (Python < 3.12), each test's ``location`` (a cached
    property every report reads) is computed here, before the threads start: else threads take
    turns at one lock for all the tests. The same work a thread would do, with no lock to wait
    for."""
    if _CACHED_PROPERTY_LOCKS:
        for item in items:
            item.location  # noqa: B018 - computed and cached now


_CURRENT_TEST = "PYTEST_CURRENT_TEST"
_current_tests: dict[int, str] = {}


def update_current_test_var(item: Any, when: str | None) -> None:
    """PYTEST_CURRENT_TEST for tests on several threads: the latest phase to start of those
    running, removed when none is. No lock, which threads would queue for four times a test:
    each step is atomic, and a thread whose test ends writes again until what it wrote is still
    true (a test that started meanwhile never loses its value)."""
    ident = threading.get_ident()
    if when:
        value = f"{item.nodeid} ({when})".replace("\x00", "(null)")
        _current_tests[ident] = os.environ[_CURRENT_TEST] = value
        return
    _current_tests.pop(ident, None)
    while True:
        running = list(_current_tests.values())
        if running:
            os.environ[_CURRENT_TEST] = running[-1]
        else:
            with suppress(KeyError):  # (another thread's removal came first)
                del os.environ[_CURRENT_TEST]
        if list(_current_tests.values()) == running:
            return


def serialize_ast_parse() -> Callable[[], None]:
    """Let one thread at a time build a Python AST (``ast.parse``). CPython 3.11 keeps the AST
    constructor's recursion depth per interpreter: two threads building ASTs at once can fail
    with "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905). pytest
    parses source while it formats a failure's traceback, on the failing test's thread.

    The lock stays for the life of the process (what is returned restores nothing): after
    Ctrl-C, tests abandoned on their threads still run while the main thread formats pytest's
    KeyboardInterrupt report, which parses source too."""
    import ast

    if not getattr(ast.parse, "_parproc_serialized", False):
        original = ast.parse
        lock = threading.RLock()

        def parse(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        parse.__doc__ = original.__doc__
        parse._parproc_serialized = True  # type: ignore[attr-defined]
        ast.parse = parse
    return lambda: None


def serialize_mktemp() -> Callable[[], None]:
    """Let one thread at a time create a numbered temporary directory. pytest picks the next
    free number and retries a few times on a clash (``TempPathFactory.mktemp``, behind
    ``tmp_path`` and ``tmp_path_factory``): tests of the same name prefix on many threads use
    the retries up ("could not create numbered dir")."""
    original = pytest.TempPathFactory.mktemp
    lock = threading.Lock()

    def mktemp(self: pytest.TempPathFactory, basename: str, numbered: bool = True) -> Any:
        with lock:
            return original(self, basename, numbered)

    pytest.TempPathFactory.mktemp = mktemp  # type: ignore[method-assign]

    def restore() -> None:
        pytest.TempPathFactory.mktemp = original  # type: ignore[method-assign]

    return restore
