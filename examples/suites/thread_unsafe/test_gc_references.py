"""A test that asserts what refers to an object (``gc.get_referrers``), as libraries that make
copies of classes do, beside a test that holds a reference for a moment. Serially the reference
is gone before the check; on threads the check can see it."""

import gc
import threading


class Thing:
    pass


THING = Thing()
_holding = threading.Event()
_checked = threading.Event()


def test_holds_a_reference_for_a_moment() -> None:
    held = [THING]
    _holding.set()
    _checked.wait(timeout=0.5)  # alone: nobody checks, the wait runs out
    assert held[0] is THING


def test_nothing_else_refers_to_the_thing() -> None:
    _holding.wait(timeout=0.5)  # serially the test above has ended already
    gc.collect()
    others = [ref for ref in gc.get_referrers(THING) if ref is not globals()]
    _checked.set()
    assert others == []
