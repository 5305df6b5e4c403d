"""Private pytest names that running a fixture outside a test needs (``plugin/shared``: a
run-once fixture is set up in the main process before any test, and its cached value detached
from pytest's ``FixtureDef`` so that the tests' processes and threads get it from the plugin).
Each use says why; ``tests/plugin/test_pytest_internals.py`` checks every name."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

if sys.version_info < (3, 11):  # pragma: no cover - pytest depends on the backport there
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

#: what ``FixtureDef.cached_result`` holds: (value, cache key, error)
CachedResult = tuple[Any, Any, Any]


def definitions(session: pytest.Session, name: str) -> Sequence[Any]:
    """Every definition of fixture ``name`` that collection found, in the order found (the
    fixture manager's ``_arg2fixturedefs`` before pytest 9.1, ``_arg2node2fixturedefs`` and its
    legacy ``_arg2nodeid2fixturedefs`` since): a name given on the command line must exist,
    whichever tests use it."""
    manager: Any = session._fixturemanager
    if hasattr(manager, "_arg2fixturedefs"):
        return tuple(manager._arg2fixturedefs.get(name) or ())
    found: list[Any] = []
    for table in (manager._arg2node2fixturedefs, manager._arg2nodeid2fixturedefs):
        for each in table.get(name, {}).values():
            found.extend(each)
    return tuple(found)


def every_definition(session: pytest.Session) -> Iterator[Any]:
    """Every fixture definition collection found (the same tables as ``definitions``)."""
    manager: Any = session._fixturemanager
    if hasattr(manager, "_arg2fixturedefs"):
        for found in manager._arg2fixturedefs.values():
            yield from found
        return
    for table in (manager._arg2node2fixturedefs, manager._arg2nodeid2fixturedefs):
        for by_node in table.values():
            for found in by_node.values():
                yield from found


def parameters_used(
    item: pytest.Item, definition: Any, closures: dict[Any, frozenset[str]] | None = None
) -> tuple[tuple[str, tuple[int, int]], ...]:
    """The parameters of ``item`` that a value of ``definition`` depends on: those of the
    fixture itself and of every fixture it depends on, directly or not (each as its index and
    its value's identity, ``pytest_internals.parameters``). ``closures`` caches the names a
    definition depends on, per fixture graph."""
    from . import fixture_graph, parameters

    indices = parameters(item)
    if not indices:
        return ()
    graph = fixture_graph(item)
    key = (definition, id(graph))
    names = closures.get(key) if closures is not None else None
    if names is None:
        seen = {definition.argname}
        todo = list(definition.argnames)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                for each in graph.get(name, ()):
                    todo.extend(each.argnames)
        names = frozenset(seen)
        if closures is not None:
            closures[key] = names
    return tuple(sorted((name, index) for name, index in indices.items() if name in names))


def enter_session(session: pytest.Session) -> None:
    """Put the session on this process's set-up stack (``session._setupstate``), as the first
    test does: ``FixtureDef.execute`` registers a session fixture's finalizer there, which
    asserts that the session is set up."""
    state = session._setupstate
    if session not in state.stack:
        state.setup(session)  # type: ignore[arg-type]  # (a node: pytest walks its listchain)


def subrequest(item: pytest.Item, fixturedef: Any) -> Any:
    """The request pytest would give ``fixturedef`` when ``item`` needs it: ``TopRequest`` and
    ``SubRequest`` have no public constructor, and ``TopRequest.getfixturevalue`` refuses to run
    for a test that is not set up (pytest 9.1 warns, then fails)."""
    from _pytest.compat import NOTSET
    from _pytest.fixtures import SubRequest, TopRequest

    top = TopRequest(item, _ispytest=True)  # type: ignore[arg-type]
    name = fixturedef.argname
    callspec = getattr(item, "callspec", None)
    if callspec is not None and name in callspec.params:
        param, index = callspec.params[name], callspec.indices[name]
    else:
        param, index = NOTSET, 0
    return SubRequest(top, fixturedef._scope, param, index, fixturedef, _ispytest=True)


def cached_error(cached: CachedResult | None) -> BaseException | None:
    """The error a failed fixture left in its ``cached_result``: the exception (pytest 8.0) or
    (exception, traceback) (later releases)."""
    if cached is None or cached[2] is None:
        return None
    error = cached[2]
    return error if isinstance(error, BaseException) else error[0]


def cache_error(fixturedef: Any, request: Any, error: BaseException, traceback: Any) -> None:
    """Cache a setup's error on the definition as pytest's own ``pytest_fixture_setup`` does
    (the next request raises it again, and finds its finalizers expected): the exception until
    pytest 8.2, (exception, traceback) since 8.3."""
    third = (error, traceback) if pytest.version_tuple >= (8, 3) else error
    fixturedef.cached_result = (None, fixturedef.cache_key(request), third)


def detach(fixturedef: Any) -> tuple[CachedResult | None, list[Any]]:
    """Take a fixture's value and finalizers off its ``FixtureDef`` (which holds one value) and
    return them: nothing in this process or a fork of it tears them down unless they are put
    back (``attach``)."""
    cached, finalizers = fixturedef.cached_result, list(fixturedef._finalizers)
    fixturedef.cached_result = None
    fixturedef._finalizers.clear()
    return cached, finalizers


def attach(fixturedef: Any, cached: CachedResult | None, finalizers: list[Any]) -> None:
    fixturedef.cached_result = cached
    fixturedef._finalizers.clear()
    fixturedef._finalizers.extend(finalizers)


def finish_detached(
    fixturedef: Any, request: Any, cached: CachedResult | None, finalizers: list[Any]
) -> None:
    """``FixtureDef.finish`` for a value taken off its definition (``detach``), which leaves
    the definition alone (the threading runner may still have it patched): the finalizers,
    newest first, then ``pytest_fixture_post_finalizer`` where ``finish`` itself calls it
    (before pytest 9.1; since, it is the first finalizer). The value sits on the definition
    meanwhile, where ``--setup-show`` looks for it."""
    errors: list[BaseException] = []
    fixturedef.cached_result = cached
    try:
        for finalizer in reversed(finalizers):
            try:
                finalizer()
            except BaseException as error:
                errors.append(error)
        if cached is not None and pytest.version_tuple < (9, 1):
            try:
                request.node.ihook.pytest_fixture_post_finalizer(
                    fixturedef=fixturedef, request=request
                )
            except BaseException as error:
                errors.append(error)
    finally:
        fixturedef.cached_result = None
    if len(errors) == 1:
        raise errors[0]
    if errors:
        name = fixturedef.argname
        raise BaseExceptionGroup(f'errors while tearing down fixture "{name}"', errors[::-1])


def forget_set_up_nodes(session: pytest.Session) -> list[Any]:
    """A forked worker empties the set-up stack it inherited (the session, with the finalizers
    of the fixtures the main process set up for everyone), so that its own last teardown never
    runs them; returns what the stack held, which the caller keeps alive."""
    state = session._setupstate
    held = list(state.stack.items())
    state.stack.clear()
    return held


def _capture_manager(config: pytest.Config) -> Any:
    return config.pluginmanager.get_plugin("capturemanager")


@contextmanager
def captured_output(config: pytest.Config) -> Iterator[list[str]]:
    """Capture what the block prints as pytest captures a test's set-up (the capture manager's
    global capture, resumed around it); the yielded list gets [stdout, stderr] at the end.
    Under ``-s`` nothing is captured: it reaches the terminal."""
    capman = _capture_manager(config)
    output = ["", ""]
    if capman is None or not capman.is_globally_capturing():
        yield output
        return
    capman.resume_global_capture()
    try:
        yield output
    finally:
        capman.suspend_global_capture(in_=False)
        out, err = capman.read_global_capture()
        output[:] = [out, err]


@contextmanager
def terminal_between_captures(config: pytest.Config) -> Iterator[None]:
    """Write to the terminal from code that runs under ``captured_output`` (as ``--setup-show``
    does: its own lines suspend the capture around them)."""
    capman = _capture_manager(config)
    capturing = capman is not None and capman.is_globally_capturing()
    if capturing:
        capman.suspend_global_capture()
    try:
        yield
    finally:
        if capturing:
            capman.resume_global_capture()


def warnings_of(config: pytest.Config, item: pytest.Item) -> Any:
    """Record the warnings of the block as pytest records a test's (``catch_warnings_for_item``:
    the ini's and ``-W``'s filters and the test's marks applied, each warning reported through
    ``pytest_warning_recorded`` on the test), for a shared fixture's setup and teardown."""
    from _pytest.warnings import catch_warnings_for_item

    return catch_warnings_for_item(config, config.hook, "runtest", item)


def requesting_item(request: Any) -> pytest.Item | None:
    """The test a fixture request is for (``request.node`` is the session for a session
    fixture; the test is ``_pyfuncitem``)."""
    return getattr(request, "_pyfuncitem", None)


@contextmanager
def captured_logs(config: pytest.Config) -> Iterator[list[str]]:
    """Capture the block's log records as the logging plugin captures a test phase's (its
    ``catching_logs`` and ``LogCaptureHandler``, with its formatter and ``log_level``); the
    yielded list gets the text of a ``Captured log`` section at the end."""
    plugin = config.pluginmanager.get_plugin("logging-plugin")
    text = [""]
    if plugin is None:
        yield text
        return
    from _pytest.logging import LogCaptureHandler, catching_logs

    handler = LogCaptureHandler()
    handler.setFormatter(plugin.formatter)
    try:
        with catching_logs(handler, level=plugin.log_level):
            yield text
    finally:
        text[0] = handler.stream.getvalue().strip()
