"""Test classes that hand state to each other through a class attribute, in their order: the
first class runs with the context it starts with, a later test switches it, and a subclass runs
the first class's tests again with the new one (a parser's suite does this with its cache).
Run again alone after a thread run, the first test would still see the switched context: only
the module's order gives the serial outcome."""

import threading

_switched = threading.Event()


class TestPlainContext:
    context = "plain"

    def test_context(self) -> None:
        _switched.wait(timeout=0.5)  # serially the switch comes later: the wait runs out
        assert self.context == "plain"


class TestSwitchContext:
    def test_switch(self) -> None:
        TestPlainContext.context = "cached"
        _switched.set()


class TestCachedContext(TestPlainContext):
    def test_context(self) -> None:
        assert self.context == "cached"
