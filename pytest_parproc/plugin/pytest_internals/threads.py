"""Private pytest names that the threading runner needs: fixture definitions that keep one value
per thread's slot, parameters that are not fixtures, a test run again.
``tests/plugin/test_pytest_internals.py`` checks each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

_MISSING = object()
_fixturedef_saved: dict[str, object] = {}


def patch_fixturedef(
    *,
    execute: Callable[..., Any],
    finish: Callable[..., Any],
    cached_result: Any,
    finalizers: Any,
    func: Any,
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A FixtureDef caches one value (``cached_result``, ``_finalizers``), made in ``execute`` and
    torn down in ``finish``: the threading runner wraps both and keeps those per slot, and
    ``func`` per thread (pytest-asyncio swaps it per test). Returns the original methods."""
    cls: Any = pytest.FixtureDef
    if _fixturedef_saved:
        raise RuntimeError("FixtureDef is patched already (a run abandoned by Ctrl-C?)")
    replacements = dict(execute=execute, finish=finish, cached_result=cached_result, func=func)
    replacements["_finalizers"] = finalizers
    for name, value in replacements.items():
        _fixturedef_saved[name] = cls.__dict__.get(name, _MISSING)
        setattr(cls, name, value)
    # pytest 9 makes a ``RequestFixtureDef`` each time a test or fixture asks for ``request``
    # (some six a test), used by that request alone: it keeps plain attributes, which its
    # instances' own dictionaries hold, not the slots shared definitions need.
    request_definition = _request_fixturedef()
    if request_definition is not None:
        for name in ("cached_result", "_finalizers", "func"):
            setattr(request_definition, name, None)
    return _fixturedef_saved["execute"], _fixturedef_saved["finish"]  # type: ignore[return-value]


def _request_fixturedef() -> Any:
    """``_pytest.fixtures.RequestFixtureDef`` (pytest 9), or None (pytest 8)."""
    from _pytest import fixtures

    return getattr(fixtures, "RequestFixtureDef", None)


def unpatch_fixturedef() -> None:
    cls: Any = pytest.FixtureDef
    for name, value in _fixturedef_saved.items():
        delattr(cls, name) if value is _MISSING else setattr(cls, name, value)
    _fixturedef_saved.clear()
    request_definition = _request_fixturedef()
    if request_definition is not None:
        for name in ("cached_result", "_finalizers", "func"):
            if name in request_definition.__dict__:
                delattr(request_definition, name)


def direct_parameters(item: pytest.Item) -> set[str]:
    """The names a test gets from ``@pytest.mark.parametrize`` itself, not from a fixture: pytest
    stands a fixture definition in for each, whose function is
    ``_pytest.python.get_direct_param_fixture_func`` (pytest 8 and 9). A parameter named like a
    fixture (``extras``, ``caplog``) is then a value, not that fixture."""
    from _pytest.python import get_direct_param_fixture_func

    from . import fixture_graph

    return {
        name
        for name, definitions in fixture_graph(item).items()
        if definitions and getattr(definitions[-1], "func", None) is get_direct_param_fixture_func
    }


def forget_report_sections(item: pytest.Item) -> None:
    """A test run again in the same process (the threading backend's confirmation): the captured
    output of its first run goes, or its reports would show both runs' output. pytest adds each
    phase's captured sections to ``item._report_sections`` and never empties it."""
    sections = getattr(item, "_report_sections", None)
    if isinstance(sections, list):
        sections.clear()


def suite_properties_kept_once(config: pytest.Config) -> Callable[[], None]:
    """Before a test runs again: returns what drops, after it, the ``record_testsuite_property``
    values the run again added that junitxml holds already (``LogXML.global_properties``, a
    list it appends to; the first run added them)."""
    from . import junit_xml

    xml = junit_xml(config)
    properties = getattr(xml, "global_properties", None)
    if not isinstance(properties, list):
        return lambda: None
    before = list(properties)

    def drop() -> None:
        added = properties[len(before) :]
        properties[len(before) :] = [value for value in added if value not in before]

    return drop
