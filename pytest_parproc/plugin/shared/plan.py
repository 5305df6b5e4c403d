"""Which shared fixtures a run needs (those its selected tests use, autouse included), which
tests depend on each, and the check that a shared fixture depends on nothing narrower."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from .. import pytest_internals
from ..pytest_internals import fixture_runs
from .marking import InstanceKey, definition_key, is_shared

#: fixtures that are the same for the whole run in every process: a shared fixture may use them
RUN_WIDE = frozenset(
    {"request", "pytestconfig", "tmp_path_factory", "tmpdir_factory", "cache", "testrun_uid"}
)


@dataclass
class Need:
    """One value of a shared fixture that the run needs: its definition, the parameter index,
    and the first test (in collection order) that needs it."""

    key: InstanceKey
    fixturedef: Any
    item: pytest.Item


@dataclass
class Plan:
    needs: dict[InstanceKey, Need] = field(default_factory=dict)
    #: node id -> the values its test depends on
    dependents: dict[str, list[InstanceKey]] = field(default_factory=dict)


def candidates(session: pytest.Session, names: Iterable[str]) -> frozenset[str]:
    """The names under which some shared fixture is defined: a test whose closure has none of
    them needs no shared fixture (most suites have none, and this is checked once per test)."""
    names = frozenset(names)
    return frozenset(
        definition.argname
        for definition in fixture_runs.every_definition(session)
        if is_shared(definition, names)
    )


def shared_in(item: pytest.Item, names: Iterable[str]) -> list[tuple[str, Any]]:
    """The shared fixtures in a test's closure, as (name, definition), in pytest's order."""
    graph = pytest_internals.fixture_graph(item)
    found = []
    for name in getattr(item, "fixturenames", ()):
        definitions = graph.get(name)
        if definitions and is_shared(definitions[-1], names):
            found.append((name, definitions[-1]))
    return found


def make_plan(session: pytest.Session, items: Sequence[pytest.Item], names: Iterable[str]) -> Plan:
    plan = Plan()
    names = frozenset(names)
    wanted = candidates(session, names)
    if not wanted:
        return plan
    for item in items:
        if wanted.isdisjoint(getattr(item, "fixturenames", ())):
            continue
        for name, fixturedef in shared_in(item, names):
            key = (definition_key(session, fixturedef), fixture_runs.parameter_index(item, name))
            plan.needs.setdefault(key, Need(key, fixturedef, item))
            plan.dependents.setdefault(item.nodeid, []).append(key)
    return plan


def check_dependencies(session: pytest.Session, names: Iterable[str]) -> None:
    """A shared fixture may depend only on shared fixtures and run-wide ones: anything
    narrower (a plain session fixture, set up once per worker; a module fixture) is a usage
    error naming the chain from the test to it."""
    names = frozenset(names)
    wanted = candidates(session, names)
    if not wanted:
        return
    checked: set[int] = set()
    for item in session.items:
        if wanted.isdisjoint(getattr(item, "fixturenames", ())):
            continue
        graph = pytest_internals.fixture_graph(item)
        for name, fixturedef in shared_in(item, names):
            if id(fixturedef) not in checked:
                checked.add(id(fixturedef))
                _check(item, graph, fixturedef, [item.nodeid, name], names)


def _check(
    item: pytest.Item,
    graph: Any,
    fixturedef: Any,
    chain: list[str],
    names: frozenset[str],
) -> None:
    for argname in fixturedef.argnames:
        if argname == "request":
            continue
        definitions = list(graph.get(argname) or ())
        if argname == fixturedef.argname and fixturedef in definitions:
            definitions = definitions[: definitions.index(fixturedef)]  # the one it overrides
        if not definitions:
            continue  # pytest reports the missing fixture itself
        dependency = definitions[-1]
        if is_shared(dependency, names):
            if argname not in chain:
                _check(item, graph, dependency, [*chain, argname], names)
            continue
        if argname in RUN_WIDE and dependency.scope == "session" and not dependency.baseid:
            continue
        scope = dependency.scope
        how = "once per worker" if scope == "session" else f"once per {scope}"
        raise pytest.UsageError(
            f"shared fixture {chain[-1]!r} ({location(fixturedef, item.config)}) depends on "
            f"{argname!r}, a {scope} fixture ({location(dependency, item.config)}) that is set "
            f"up {how}; a shared fixture is set up once per run in the main process, and may "
            "depend only on other shared fixtures and on "
            f"{', '.join(sorted(RUN_WIDE - {'request'}))} (and request).\n"
            f"  chain: {' -> '.join([*chain, argname])}\n"
            f"  make {argname!r} shared too (@shared_fixture, or --par-shared={argname}), or "
            f"move what needs it out of {chain[-1]!r}"
        )


def location(fixturedef: Any, config: pytest.Config) -> str:
    """``path:line`` of a fixture's function, relative to the rootdir where it is under it."""
    function = inspect.unwrap(fixturedef.func)
    try:
        path = inspect.getsourcefile(function) or "?"
        line = function.__code__.co_firstlineno
    except (TypeError, AttributeError):
        return "?"
    try:
        path = os.path.relpath(path, config.rootpath)
    except ValueError:
        pass
    return f"{path}:{line}"
