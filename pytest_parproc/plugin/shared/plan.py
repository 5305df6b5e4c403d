"""Which shared fixtures a run needs (those its selected tests use, autouse included), which
tests depend on each, and the check that a shared fixture depends on nothing narrower."""

from __future__ import annotations

import inspect
import os
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from .. import pytest_internals
from ..pytest_internals import fixture_runs
from .marking import is_shared

#: fixtures that are the same for the whole run in every process: a shared fixture may use them
RUN_WIDE = frozenset(
    {"request", "pytestconfig", "tmp_path_factory", "tmpdir_factory", "cache", "testrun_uid"}
)


@dataclass
class Need:
    """One value of a shared fixture that the run needs: its number, its definition (``depth``
    -1 is a name's closest definition, -2 the one that overrides, ...) and the first test (in
    collection order) that needs it."""

    number: int
    name: str
    depth: int
    fixturedef: Any
    item: pytest.Item


#: which value of each shared fixture a test gets: (name, depth) -> value number
Table = dict[tuple[str, int], int]


@dataclass
class Plan:
    needs: list[Need] = field(default_factory=list)
    #: node id -> its table's number; tests alike share a table (most runs have one or two)
    by_test: dict[str, int] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    #: (definition, the parameters it depends on) -> value number (this process only)
    numbers: dict[Hashable, int] = field(default_factory=dict)

    def table_of(self, nodeid: str) -> Table:
        number = self.by_test.get(nodeid)
        return self.tables[number] if number is not None else {}


def candidates(session: pytest.Session, names: Iterable[str]) -> frozenset[str]:
    """The names under which some shared fixture is defined: a test whose closure has none of
    them needs no shared fixture (most suites have none, and this is checked once per test)."""
    names = frozenset(names)
    return frozenset(
        definition.argname
        for definition in fixture_runs.every_definition(session)
        if is_shared(definition, names)
    )


def shared_in(item: pytest.Item, names: Iterable[str]) -> list[tuple[str, int, Any]]:
    """The shared fixtures in a test's closure, as (name, depth, definition), in pytest's
    order; with the definitions that a fixture requesting its own name overrides."""
    graph = pytest_internals.fixture_graph(item)
    found = []
    for name in getattr(item, "fixturenames", ()):
        definitions = graph.get(name) or ()
        depth = -1
        while -depth <= len(definitions):
            definition = definitions[depth]
            if is_shared(definition, names):
                found.append((name, depth, definition))
            if name not in definition.argnames:
                break
            depth -= 1
    return found


def value_key(item: pytest.Item, definition: Any) -> Hashable:
    """What makes two tests share a value of ``definition``, as in a serial run: the same
    definition, and the same value of every parametrized fixture it depends on (itself
    included), by index and identity (two parametrizations' first values both have index 0)."""
    return (id(definition), fixture_runs.parameters_used(item, definition))


#: the plan made once collection is done (``plan_and_check``), which the run then uses
PLAN_KEY = pytest.StashKey[Plan]()


def plan_and_check(session: pytest.Session, names: Iterable[str]) -> Plan:
    """Every value the selected tests need, and which each test gets; on the way, the check
    that a shared fixture depends on nothing narrower than itself (a plain session fixture,
    set up once per worker; a module fixture): a usage error naming the chain from the test.
    One pass over the tests, which most suites (without shared fixtures) skip entirely."""
    plan = Plan()
    names = frozenset(names)
    wanted = candidates(session, names)
    if not wanted:
        return plan
    checked: set[int] = set()
    known_tables: dict[tuple[tuple[tuple[str, int], int], ...], int] = {}
    for item in session.items:
        if wanted.isdisjoint(getattr(item, "fixturenames", ())):
            continue
        table: Table = {}
        for name, depth, definition in shared_in(item, names):
            if id(definition) not in checked:
                checked.add(id(definition))
                graph = pytest_internals.fixture_graph(item)
                _check(item, graph, definition, [item.nodeid, name], names)
            key = value_key(item, definition)
            number = plan.numbers.get(key)
            if number is None:
                number = plan.numbers[key] = len(plan.needs)
                plan.needs.append(Need(number, name, depth, definition, item))
            table[(name, depth)] = number
        if table:
            frozen = tuple(sorted(table.items()))
            found = known_tables.get(frozen)
            if found is None:
                found = known_tables[frozen] = len(plan.tables)
                plan.tables.append(table)
            plan.by_test[item.nodeid] = found
    return plan


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
        if argname in RUN_WIDE and _from_a_plugin(dependency):
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


def _from_a_plugin(fixturedef: Any) -> bool:
    """A run-wide fixture as pytest (or xdist, or this plugin) defines it, not a conftest's
    fixture of the same name."""
    module = getattr(inspect.unwrap(fixturedef.func), "__module__", "") or ""
    return fixturedef.scope == "session" and module.split(".")[0] in (
        "_pytest",
        "xdist",
        "pytest_parproc",
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
