"""The value of each fixture as concurrent tests see it: pytest's ``FixtureDef`` keeps one
cached value, these keep one per slot (scope node and parameters), created and finished under
a lock of its own. The package docstring explains the whole approach."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

import pytest

from ..pytest_internals import fixture_runs
from ..pytest_internals import threads as thread_internals
from .setup_state import OUTCOMES, context, shared_lock


class _Slot:
    __slots__ = ("cached_result", "finalizers")

    def __init__(self) -> None:
        self.cached_result: Any = None
        self.finalizers: list[Callable[[], object]] = []


_NO_KEY = object()
_SLOTS = "_parproc_slots"
_REQUEST_KEY = "_parproc_slot_key"


def _slot(fixturedef: Any) -> _Slot:
    # (read some 60 times a test: each step kept to one dictionary operation)
    key = context.overrides.get(fixturedef, _NO_KEY)
    if key is _NO_KEY:
        key = context.resolved.get(fixturedef)
    slots: dict[Hashable, _Slot] | None = fixturedef.__dict__.get(_SLOTS)
    if slots is None:
        slots = fixturedef.__dict__.setdefault(_SLOTS, {})
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


_closures: dict[Any, frozenset[str]] = {}


def _parameters(fixturedef: Any, item: pytest.Item) -> tuple[tuple[str, tuple[int, int]], ...]:
    return fixture_runs.parameters_used(item, fixturedef, _closures)


_slot_locks: dict[tuple[int, Hashable], threading.RLock] = {}


def _slot_lock(fixturedef: Any, key: Hashable) -> Any:
    """One lock per value of a fixture wider than a function: the first test that needs the
    value creates it while the others wait, then all share it. Different values (another
    module's fixture) are created at the same time. Creating a value waits only for those it
    depends on (pytest refuses dependency cycles). Finishing a value finishes its dependents
    under its lock, the other order; but a value is finished only once every test that uses it
    has ended (its scope's last test, or its segment's), so nothing is creating one meanwhile."""
    lock_key = (id(fixturedef), key)
    found = _slot_locks.get(lock_key)
    if found is None:
        with shared_lock:
            found = _slot_locks.setdefault(lock_key, threading.RLock())
    return found


def _override(fixturedef: Any, key: Hashable) -> Any:
    """This thread sees slot ``key`` of ``fixturedef`` until ``_restore(fixturedef, previous)``
    (no context manager: a dozen of these a test)."""
    overrides = context.overrides
    previous = overrides.get(fixturedef, _NO_KEY)
    overrides[fixturedef] = key
    return previous


def _restore(fixturedef: Any, previous: Any) -> None:
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
            except OUTCOMES as error:
                errors.append(error)
    return errors


#: ``FixtureDef.func`` as set by this thread, where it differs from the fixture's own function
_funcs = threading.local()


def _get_func(self: Any) -> Any:
    swapped = getattr(_funcs, "by_definition", None)
    if swapped:
        found = swapped.get(self)
        if found is not None:
            return found
    return self.__dict__["func"]


def _set_func(self: Any, value: Any) -> None:
    """pytest-asyncio swaps an async fixture's function for one bound to the test's event loop
    while it sets the fixture up for that test, and puts it back after: the swap holds for the
    thread that made it, so concurrent tests each get their own loop."""
    own = self.__dict__.get("func")
    if own is None:  # a definition made now: its function, for every thread
        self.__dict__["func"] = value
        return
    swapped = _funcs.__dict__.setdefault("by_definition", {})
    if value is own:
        swapped.pop(self, None)
    else:
        swapped[self] = value


def install_fixture_slots() -> Callable[[], None]:
    """Give every FixtureDef one cached value per slot key instead of one in all; returns the
    function that puts pytest's own behaviour back."""

    def execute(self: Any, request: Any) -> Any:
        __tracebackhide__ = True  # a fixture's error shows the user's frames, as serially
        key = slot_key(self, request)
        context.resolved[self] = key
        setattr(request, _REQUEST_KEY, key)
        wide = self.scope != "function"
        if wide and key[1]:
            _parametrized.setdefault((id(self), key), (self, request))
        previous = _override(self, key)
        try:
            if not wide:
                return original_execute(self, request)
            with _slot_lock(self, key):
                return original_execute(self, request)
        finally:
            _restore(self, previous)

    def finish(self: Any, request: Any) -> None:
        __tracebackhide__ = True
        key = getattr(request, _REQUEST_KEY, None)
        if key is None:
            key = slot_key(self, request)
        previous = _override(self, key)
        try:
            if self.scope == "function":
                original_finish(self, request)
            else:
                with _slot_lock(self, key):
                    original_finish(self, request)
        finally:
            _restore(self, previous)
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

    original_execute, original_finish = thread_internals.patch_fixturedef(
        execute=execute,
        finish=finish,
        cached_result=property(get_cached, set_cached),
        finalizers=property(get_finalizers, set_finalizers),
        func=property(_get_func, _set_func),
    )

    def restore() -> None:
        thread_internals.unpatch_fixturedef()
        for cache in (_parametrized, _slot_locks, _closures):
            cache.clear()  # they hold this session's nodes and requests

    return restore
