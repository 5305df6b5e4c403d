"""What concurrent tests share inside one process, made safe to share: which collection nodes
are set up (pytest's ``SetupState`` keeps one stack for one test at a time) and the cached
value of each fixture (a ``FixtureDef`` keeps one). ``threads.py`` explains the whole approach.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from . import pytest_internals

if sys.version_info < (3, 11):  # pragma: no cover - pytest depends on the backport there
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

#: What pytest's SetupState catches from a set-up or a finalizer (``pytest.exit`` raises an
#: Exception too); KeyboardInterrupt and the like go straight through, as there.
_OUTCOMES = (Exception, pytest.skip.Exception, pytest.fail.Exception)

#: Set-up and tear-down of collectors (a module's ``setup()``) and the bookkeeping of set-up
#: state run under this lock.
shared_lock = threading.RLock()


class ThreadContext(threading.local):
    """The test the current thread runs, and which fixture value it sees for each fixture."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None
        #: fixturedef -> slot key, for every fixture this thread's current test has set up
        self.resolved: dict[object, Hashable] = {}
        #: fixturedef -> slot key while its execute() or finish() runs on this thread
        self.overrides: dict[object, Hashable] = {}


context = ThreadContext()


@contextmanager
def running(item: pytest.Item | None) -> Iterator[None]:
    """Mark ``item`` as the test this thread runs (fixture lookups and teardown use it)."""
    context.item, context.resolved = item, {}
    try:
        yield
    finally:
        context.item, context.resolved = None, {}


class ConcurrentSetupState:
    """Stands in for ``session._setupstate`` while tests run in threads.

    A collector (session, package, module, class) is set up once, by the first test that needs
    it, and torn down in the teardown of its last test, deepest first, as in a serial run: the
    last of its tests to start waits there for the others to finish (they started before it,
    so they do not need its thread), and its report gets the collector's teardown errors. Each
    running test keeps its own finalizers. A collector whose set-up failed re-raises that error
    for each of its tests, as pytest's SetupState does.
    """

    def __init__(
        self,
        items: Sequence[pytest.Item],
        groups: Sequence[Sequence[int]],
        end_group: Callable[[int], list[BaseException]],
    ) -> None:
        """``groups``: indices of ``items`` in the order they will be started, in groups that
        run one after the other (tests that share parameters of wider fixtures). The last test
        of a group calls ``end_group(number)`` in its teardown once the others finished (to
        tear down what the next group needs other parameters of), except after the last."""
        self._remaining: dict[Any, int] = {}
        #: collector, or ("group", number) -> its last test to be started
        self._last: dict[Any, Any] = {}
        self._group_of: dict[Any, tuple[str, int]] = {}
        for number, group in enumerate(groups):
            for index in group:
                item = items[index]
                self._group_of[item] = ("group", number)
                for node in [("group", number), *item.listchain()[:-1]]:
                    self._remaining[node] = self._remaining.get(node, 0) + 1
                    self._last[node] = item
        self._groups = len(groups)
        self._end_group = end_group
        self._counted: set[Any] = set()
        self._finished = threading.Condition(shared_lock)
        #: finalizers of tests that never got to their teardown (pytest.exit): run at the end
        self._orphans: list[tuple[Any, list[Callable[[], object]]]] = []
        #: collectors set up (in set-up order): their finalizers, and set-up error if any
        self._nodes: dict[Any, tuple[list[Callable[[], object]], tuple[Any, Any] | None]] = {}
        self._items: dict[Any, list[Callable[[], object]]] = {}
        self.stack = _ActiveNodes(self)

    def is_node_active(self, node: Any) -> bool:
        return node in self._nodes or node in self._items

    def setup(self, item: pytest.Item) -> None:
        for node in item.listchain()[:-1]:
            with shared_lock:
                state = self._nodes.get(node)
                if state is None:
                    self._nodes[node] = ([node.teardown], None)
                    try:
                        node.setup()
                    except _OUTCOMES as error:
                        self._nodes[node] = (self._nodes[node][0], (error, error.__traceback__))
                        raise
                elif state[1] is not None:
                    raise state[1][0].with_traceback(state[1][1])
        self._items[item] = [item.teardown]
        item.setup()

    def addfinalizer(self, finalizer: Callable[[], object], node: Any) -> None:
        assert callable(finalizer)
        with shared_lock:
            if node in self._items:
                self._items[node].append(finalizer)
            elif node in self._nodes:
                self._nodes[node][0].append(finalizer)
            else:
                raise AssertionError(f"{node!r} is not set up: cannot add a finalizer to it")

    def teardown_exact(self, nextitem: pytest.Item | None) -> None:
        """Tear down this thread's test, then (as the last test of its group, or of a
        collector, once the others finished) what ends with it; with no current test (pytest's
        own ``pytest_sessionfinish``), everything still set up."""
        current = context.item
        if current is None:
            self.teardown_all()
            return
        item: pytest.Item = current
        try:
            exceptions = _run_finalizers(item, self._items.pop(item, []))
        finally:
            self._count_down(item)  # whatever escaped, the tests waiting for this one go on
        group = self._group_of.get(item)
        if group is not None and self._last.get(group) is item and group[1] + 1 < self._groups:
            self._wait_for_others(group)
            exceptions += self._end_group(group[1])
        done = []
        with self._finished:
            for node in reversed(item.listchain()[:-1]):
                if self._last.get(node) is item:
                    self._wait_for_others(node)
                    if node in self._nodes:
                        done.append((node, self._nodes.pop(node)[0]))
        for node, finalizers in done:
            exceptions += _run_finalizers(node, finalizers)
        _raise(exceptions)

    def forget(self, item: pytest.Item) -> None:
        """A test that will not reach its teardown: it was never started (the run was stopping),
        or something cut its protocol short (pytest.exit, an error in a hook); its own
        finalizers, if any, run with ``teardown_all``. Safe to call more than once."""
        with self._finished:
            finalizers = self._items.pop(item, None)
            if finalizers:
                self._orphans.append((item, finalizers))
        self._count_down(item)

    def _count_down(self, item: pytest.Item) -> None:
        with self._finished:
            if item in self._counted:
                return
            self._counted.add(item)
            group = self._group_of.get(item)
            for node in [*([group] if group is not None else []), *item.listchain()[:-1]]:
                self._remaining[node] -= 1
            self._finished.notify_all()

    def _wait_for_others(self, node: Any) -> None:
        """The tests of ``node`` started before this one, each on a thread of its own (or
        finished): they end without this thread."""
        with self._finished:
            while self._remaining[node] > 0:
                self._finished.wait()

    def teardown_all(self) -> None:
        with shared_lock:
            done = self._orphans[::-1]
            done += [(node, finalizers) for node, (finalizers, _) in self._nodes.items()][::-1]
            self._orphans = []
            self._nodes.clear()
        exceptions: list[BaseException] = []
        for node, finalizers in done:
            exceptions += _run_finalizers(node, finalizers)
        _raise(exceptions)


class _ActiveNodes:
    """``SetupState.stack`` as pytest's fixture code reads it: ``node in stack``."""

    def __init__(self, state: ConcurrentSetupState) -> None:
        self._state = state

    def __contains__(self, node: object) -> bool:
        return self._state.is_node_active(node)

    def __bool__(self) -> bool:
        return bool(self._state._nodes or self._state._items)


def _run_finalizers(node: Any, finalizers: list[Callable[[], object]]) -> list[BaseException]:
    errors: list[BaseException] = []
    while finalizers:
        try:
            finalizers.pop()()
        except _OUTCOMES as error:
            errors.append(error)
    if len(errors) > 1:
        return [BaseExceptionGroup(f"errors while tearing down {node!r}", errors[::-1])]
    return errors


def _raise(exceptions: list[BaseException]) -> None:
    if len(exceptions) == 1:
        raise exceptions[0]
    if exceptions:
        raise BaseExceptionGroup("errors during test teardown", exceptions[::-1])


# -- fixture values, one per (scope node, parameters) -----------------------------------------


class _Slot:
    __slots__ = ("cached_result", "finalizers")

    def __init__(self) -> None:
        self.cached_result: Any = None
        self.finalizers: list[Callable[[], object]] = []


_NO_KEY = object()
_SLOTS = "_parproc_slots"
_REQUEST_KEY = "_parproc_slot_key"


def _slot(fixturedef: Any) -> _Slot:
    key = context.overrides.get(fixturedef, _NO_KEY)
    if key is _NO_KEY:
        key = context.resolved.get(fixturedef)
    slots: dict[Hashable, _Slot] = fixturedef.__dict__.setdefault(_SLOTS, {})
    found = slots.get(key)
    return found if found is not None else slots.setdefault(key, _Slot())


def slot_key(fixturedef: Any, request: Any) -> tuple[Any, Any]:
    """Which value of a fixture a request gets: one per scope node (the test itself, its class,
    module, package or the session) and per parameter of the fixture and of every fixture it
    depends on, so that two tests with different parameters never share an instance, and
    tests with the same ones do, as in a serial run."""
    if fixturedef.scope == "function":
        return (request.node, None)
    item = context.item
    return (request.node, _parameters(fixturedef, item) if item is not None else ())


_closures: dict[tuple[Any, int], frozenset[str]] = {}


def _parameters(fixturedef: Any, item: pytest.Item) -> tuple[tuple[str, tuple[int, int]], ...]:
    indices = pytest_internals.parameters(item)
    if not indices:
        return ()
    graph = pytest_internals.fixture_graph(item)
    cache_key = (fixturedef, id(graph))
    names = _closures.get(cache_key)
    if names is None:
        seen = {fixturedef.argname}
        todo = list(fixturedef.argnames)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                for definition in graph.get(name, ()):
                    todo.extend(definition.argnames)
        names = _closures[cache_key] = frozenset(seen)
    return tuple(sorted((name, index) for name, index in indices.items() if name in names))


_slot_locks: dict[tuple[int, Hashable], threading.RLock] = {}


def _slot_lock(fixturedef: Any, key: Hashable) -> Any:
    """One lock per value of a fixture wider than a function: the first test that needs the
    value creates it while the others wait, then all share it. Different values (another
    module's fixture) are created at the same time. Creating a value waits only for those it
    depends on (pytest refuses dependency cycles). Finishing a value finishes its dependents
    under its lock, the other order; but a value is finished only once every test that uses it
    has ended (its scope's last test, or its group's), so nothing is creating one meanwhile."""
    lock_key = (id(fixturedef), key)
    found = _slot_locks.get(lock_key)
    if found is None:
        with shared_lock:
            found = _slot_locks.setdefault(lock_key, threading.RLock())
    return found


@contextmanager
def _override(fixturedef: Any, key: Hashable) -> Iterator[None]:
    previous = context.overrides.get(fixturedef, _NO_KEY)
    context.overrides[fixturedef] = key
    try:
        yield
    finally:
        if previous is _NO_KEY:
            del context.overrides[fixturedef]
        else:
            context.overrides[fixturedef] = previous


#: values of fixtures wider than a function that depend on parameters, in creation order
_parametrized: dict[tuple[int, tuple[Any, Any]], tuple[Any, Any]] = {}


def finish_other_parameters(parameters: dict[str, tuple[int, int]]) -> list[BaseException]:
    """Tear down every value of a wider fixture made for other parameters than these, newest
    first (its dependents with it), as a serial run does when the parameter changes; returns
    the errors of those teardowns."""
    errors: list[BaseException] = []
    for lock_key, (fixturedef, request) in reversed(list(_parametrized.items())):
        made_for: tuple[tuple[str, tuple[int, int]], ...] = lock_key[1][1]
        if any(parameters.get(name, index) != index for name, index in made_for):
            del _parametrized[lock_key]
            try:
                fixturedef.finish(request)
            except _OUTCOMES as error:
                errors.append(error)
    return errors


def install_fixture_slots() -> Callable[[], None]:
    """Give every FixtureDef one cached value per slot key instead of one in all; returns the
    function that puts pytest's own behaviour back."""

    def execute(self: Any, request: Any) -> Any:
        key = slot_key(self, request)
        context.resolved[self] = key
        setattr(request, _REQUEST_KEY, key)
        if self.scope != "function" and key[1]:
            _parametrized.setdefault((id(self), key), (self, request))
        with _override(self, key):
            if self.scope == "function":
                return original_execute(self, request)
            with _slot_lock(self, key):
                return original_execute(self, request)

    def finish(self: Any, request: Any) -> None:
        key = getattr(request, _REQUEST_KEY, None)
        if key is None:
            key = slot_key(self, request)
        try:
            with _override(self, key):
                if self.scope == "function":
                    original_finish(self, request)
                else:
                    with _slot_lock(self, key):
                        original_finish(self, request)
        finally:
            slots = self.__dict__.get(_SLOTS, {})
            slot = slots.get(key)
            if slot is not None and slot.cached_result is None and not slot.finalizers:
                slots.pop(key, None)

    def get_cached(self: Any) -> Any:
        return _slot(self).cached_result

    def set_cached(self: Any, value: Any) -> None:
        _slot(self).cached_result = value

    def get_finalizers(self: Any) -> list[Callable[[], object]]:
        return _slot(self).finalizers

    def set_finalizers(self: Any, value: list[Callable[[], object]]) -> None:
        _slot(self).finalizers = value

    original_execute, original_finish = pytest_internals.patch_fixturedef(
        execute=execute,
        finish=finish,
        cached_result=property(get_cached, set_cached),
        finalizers=property(get_finalizers, set_finalizers),
    )

    def restore() -> None:
        pytest_internals.unpatch_fixturedef()
        for cache in (_parametrized, _slot_locks, _closures):
            cache.clear()  # they hold this session's nodes and requests

    return restore
