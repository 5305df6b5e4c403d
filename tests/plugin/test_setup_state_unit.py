"""ConcurrentSetupState under real threads, with stand-in collectors and tests: each collector
set up once, torn down by its last test once the others ended, deepest first."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pytest_parproc.plugin.threads.setup_state import ConcurrentSetupState, running

TIMEOUT_S = 10.0


class Node:
    """A stand-in collector or test that records its set-up and teardown in a shared list."""

    def __init__(self, nodeid: str, log: list[Any], parent: Node | None = None) -> None:
        self.nodeid, self.log, self.parent = nodeid, log, parent
        self.error: BaseException | None = None
        self.on_setup: Callable[[], None] | None = None
        #: passed on the next ``listchain()`` call (the one that starts ``state.setup``)
        self.gate: threading.Barrier | None = None
        self.thread: int | None = None  # the thread that passed the gate

    def listchain(self) -> list[Node]:
        gate, self.gate = self.gate, None
        if gate is not None:
            self.thread = threading.get_ident()
            gate.wait(TIMEOUT_S)
        return [*(self.parent.listchain() if self.parent else []), self]

    def setup(self) -> None:
        self.log.append(("setup", self.nodeid))
        if self.on_setup is not None:
            self.on_setup()
        if self.error is not None:
            raise self.error

    def teardown(self) -> None:
        self.log.append(("teardown", self.nodeid))


class Tree:
    """Stand-in tests (``m.py::C::t``) under one session, their collectors (shared by id), the
    log they all record in, and the state over them; a segment's end is logged as ``end n``."""

    def __init__(
        self,
        *nodeids: str,
        segments: Sequence[Sequence[int]] | None = None,
        end_errors: Sequence[BaseException] = (),
    ) -> None:
        self.log: list[Any] = []
        self.nodes = {"session": Node("session", self.log)}
        self.items: list[Any] = []
        for nodeid in nodeids:
            parent, parts = self.nodes["session"], nodeid.split("::")
            for depth in range(1, len(parts)):
                prefix = "::".join(parts[:depth])
                parent = self.nodes.setdefault(prefix, Node(prefix, self.log, parent))
            self.items.append(Node(nodeid, self.log, parent))
        order = [list(range(len(self.items)))] if segments is None else segments
        self.end_errors = list(end_errors)
        self.state = ConcurrentSetupState(self.items, order, self.end_segment)

    def end_segment(self, number: int) -> list[BaseException]:
        self.log.append(("end", number))
        return self.end_errors

    def torn(self) -> list[str]:
        """What was torn down, in order (finalizers and segment ends as ``<kind> <name>``)."""
        return [n if k == "teardown" else f"{k} {n}" for k, n in self.log if k != "setup"]

    def run(self, item: Any, body: Callable[[], object] = list) -> None:
        """``protocol`` on a thread of its own, waited for (a bug that blocks fails)."""
        Worker(lambda: protocol(self.state, item, body)).finish()

    def hold(self, item: Any) -> Callable[[], None]:
        """``item``'s protocol on a thread, held in its call; returns what lets it end."""
        started, may_end = threading.Event(), threading.Event()

        def body() -> None:
            started.set()
            assert may_end.wait(TIMEOUT_S)

        worker = Worker(lambda: protocol(self.state, item, body))

        def end() -> None:
            may_end.set()
            worker.finish()

        assert started.wait(TIMEOUT_S)
        return end

    def waiting_last(self, item: Any) -> Worker:
        """``item``'s protocol on a thread, once it waits in its teardown (or ended)."""
        worker = Worker(lambda: protocol(self.state, item))
        until(lambda: self.state.waited_s(item) > 0 or not worker.is_alive())
        return worker


def protocol(state: ConcurrentSetupState, item: Any, body: Callable[[], object] = list) -> None:
    """Set up, run and tear down ``item`` on this thread."""
    with running(item):
        state.setup(item)
        body()
        state.teardown_exact(None)


class Worker(threading.Thread):
    """Runs ``work`` on a thread of its own; ``finish`` joins it and raises what it raised."""

    def __init__(self, work: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self.work, self.error = work, None
        self.start()

    def run(self) -> None:
        try:
            self.work()
        except BaseException as error:
            self.error = error

    def finish(self) -> None:
        self.join(TIMEOUT_S)
        assert not self.is_alive(), "the thread did not end"
        if self.error is not None:
            raise self.error


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        threading.Event().wait(0.0005)


def held_in_setup(thread: int | None) -> bool:
    """Whether ``thread`` is inside ``ConcurrentSetupState.setup`` and not in a stand-in's
    own code (it waits there for another thread)."""
    frame = sys._current_frames().get(thread) if thread is not None else None
    inner = []
    while frame is not None and frame.f_code is not ConcurrentSetupState.setup.__code__:
        inner.append(frame.f_code)
        frame = frame.f_back
    stand_in = {Node.setup.__code__, Node.listchain.__code__, Node.teardown.__code__}
    return frame is not None and not stand_in.intersection(inner)


def test_a_shared_collector_is_set_up_once_before_any_of_its_tests_runs() -> None:
    tree = Tree(*[f"m.py::t{n}" for n in range(4)])
    items, log = tree.items, tree.log
    together = threading.Barrier(len(items))
    for item in items:
        item.gate = together  # every thread enters state.setup at the same moment

    def module_setup() -> None:
        # The other threads come this far: each must wait for this set-up to end.
        others = [item for item in items if item.thread != threading.get_ident()]
        until(lambda: all(("setup", i.nodeid) in log or held_in_setup(i.thread) for i in others))
        log.append(("ready", "m.py"))

    tree.nodes["m.py"].on_setup = module_setup

    def setup(item: Any) -> None:
        with running(item):
            tree.state.setup(item)

    for worker in [Worker(lambda item=item: setup(item)) for item in items]:
        worker.finish()
    assert log.count(("setup", "m.py")) == 1 and log.count(("setup", "session")) == 1
    ready = log.index(("ready", "m.py"))
    assert all(log.index(("setup", item.nodeid)) > ready for item in items)
    assert all(item in tree.state.stack for item in items)


def test_the_last_test_to_start_tears_down_after_the_others_ended() -> None:
    tree = Tree("m.py::a", "m.py::b", "m.py::c")
    a, b, c = tree.items
    end_a = tree.hold(a)
    tree.run(b)  # not the last: its module stays set up
    last = tree.waiting_last(c)
    assert tree.torn() == ["m.py::b", "m.py::c"] and last.is_alive()
    end_a()
    last.finish()
    # c's own finalizers ran before it waited; its module's, only once a ended
    assert tree.torn() == ["m.py::b", "m.py::c", "m.py::a", "m.py", "session"]
    waited = tree.state.waited_s(c)
    assert waited > 0
    assert tree.state.waited_s(c) == waited  # no longer counting
    assert tree.state.waited_s(b) == 0.0


def test_the_last_test_is_the_last_in_the_segments_order_not_in_the_items() -> None:
    tree = Tree("m.py::a", "m.py::b", segments=[[1, 0]])
    tree.run(tree.items[1])
    assert tree.torn() == ["m.py::b"]
    tree.run(tree.items[0])
    assert tree.torn() == ["m.py::b", "m.py::a", "m.py", "session"]


def test_teardown_goes_deepest_first() -> None:
    tree = Tree("m.py::C::t")
    tree.run(tree.items[0])
    names = ["session", "m.py", "m.py::C", "m.py::C::t"]
    assert tree.log == [("setup", n) for n in names] + [("teardown", n) for n in names[::-1]]


@pytest.mark.parametrize("error", [ValueError("boom"), pytest.skip.Exception("no")])
def test_a_failed_collector_set_up_is_raised_again_for_each_of_its_tests(
    error: BaseException,
) -> None:
    tree = Tree("m.py::a", "m.py::b")
    tree.nodes["m.py"].error = error
    for item in tree.items:
        with running(item), pytest.raises(type(error)) as raised:
            tree.state.setup(item)
        assert raised.value is error
    assert tree.log == [("setup", "session"), ("setup", "m.py")]  # once, and no test's


def test_finalizers_of_a_test_and_of_a_collector_run_in_reverse_order() -> None:
    tree = Tree("m.py::a", "m.py::b")
    (a, b), module = tree.items, tree.nodes["m.py"]

    def add(name: str, node: Node) -> None:
        tree.state.addfinalizer(lambda: tree.log.append(("finalizer", name)), node)

    tree.run(a, lambda: (add("a1", a), add("a2", a), add("m1", module)))
    assert tree.torn() == ["finalizer a2", "finalizer a1", "m.py::a"]
    with pytest.raises(AssertionError):
        add("gone", a)  # a is no longer set up
    tree.run(b, lambda: add("m2", module))
    assert tree.torn()[3:] == ["m.py::b", "finalizer m2", "finalizer m1", "m.py", "session"]


def test_a_failing_finalizer_is_raised_from_the_teardown_and_the_others_still_run() -> None:
    tree = Tree("m.py::a")
    error = ValueError("finalizer")

    def fail() -> None:
        raise error

    with pytest.raises(ValueError) as raised:
        tree.run(tree.items[0], lambda: tree.state.addfinalizer(fail, tree.items[0]))
    assert raised.value is error
    assert tree.torn() == ["m.py::a", "m.py", "session"]


def test_forgotten_tests_let_the_last_one_tear_down_and_their_finalizers_wait() -> None:
    tree = Tree("m.py::a", "m.py::cut", "m.py::never", "m.py::last")
    a, cut, never, last = tree.items
    tree.run(a)
    with running(cut):
        tree.state.setup(cut)
        tree.state.addfinalizer(lambda: tree.log.append(("finalizer", "cut")), cut)
    tree.state.forget(cut)  # cut short (pytest.exit): its finalizers wait for teardown_all
    tree.state.forget(never)  # never started
    tree.run(last)
    assert tree.torn() == ["m.py::a", "m.py::last", "m.py", "session"]
    tree.state.teardown_all()
    assert tree.torn()[4:] == ["finalizer cut", "m.py::cut"]


def test_a_test_forgotten_twice_is_counted_once() -> None:
    tree = Tree("m.py::a", "m.py::gone", "m.py::last")
    a, gone, last = tree.items
    end_a = tree.hold(a)
    tree.state.forget(gone)
    tree.state.forget(gone)
    closing = tree.waiting_last(last)
    assert tree.torn() == ["m.py::last"]  # still waits for a
    end_a()
    closing.finish()
    assert tree.torn() == ["m.py::last", "m.py::a", "m.py", "session"]


def test_an_abandoned_test_no_longer_holds_up_the_last_one() -> None:
    tree = Tree("m.py::a", "m.py::b")
    a, b = tree.items
    end_a = tree.hold(a)
    last = tree.waiting_last(b)
    assert last.is_alive()
    tree.state.abandon(a)
    last.finish()
    assert tree.torn() == ["m.py::b", "m.py", "session"]
    end_a()  # it ends late: its own finalizers only
    assert tree.torn() == ["m.py::b", "m.py", "session", "m.py::a"]
    assert not tree.state.segment_ended_without_its_last(0)


def test_an_abandoned_last_test_leaves_its_segment_end_and_collectors_to_the_end() -> None:
    tree = Tree("m1.py::a", "m1.py::b", "m2.py::c", segments=[[0, 1], [2]])
    (a, b, c), state = tree.items, tree.state
    tree.run(a)

    def abandoned() -> None:
        state.abandon(b)
        assert state.segment_ended_without_its_last(0)
        assert not state.segment_ended_without_its_last(1)

    tree.run(b, abandoned)  # and it ends late
    tree.run(c)
    assert tree.torn() == ["m1.py::a", "m1.py::b", "m2.py::c", "m2.py", "session"]  # no end 0
    state.teardown_all()
    assert tree.torn()[-1] == "m1.py"


def test_the_last_test_of_each_segment_but_the_final_one_ends_its_segment() -> None:
    tree = Tree("m.py::a", "m.py::b", "m.py::c", "m.py::d", segments=[[0, 1], [2], [3]])
    for item in tree.items:
        tree.run(item)
    ends = ["m.py::a", "m.py::b", "end 0", "m.py::c", "end 1", "m.py::d", "m.py", "session"]
    assert tree.torn() == ends
    assert tree.log.index(("end", 0)) < tree.log.index(("setup", "m.py::c"))


def test_a_segment_ends_after_its_other_tests_ended_and_its_errors_fail_the_last() -> None:
    error = ValueError("segment end")
    tree = Tree("m.py::a", "m.py::b", "m.py::c", segments=[[0, 1], [2]], end_errors=[error])
    a, b, c = tree.items
    end_a = tree.hold(a)
    last = tree.waiting_last(b)
    assert tree.torn() == ["m.py::b"]
    end_a()
    with pytest.raises(ValueError) as raised:
        last.finish()
    assert raised.value is error
    tree.run(c)  # the final segment: no end
    assert tree.torn() == ["m.py::b", "m.py::a", "end 0", "m.py::c", "m.py", "session"]


def test_the_stack_says_which_nodes_are_set_up() -> None:
    tree = Tree("m.py::a")
    state, chain = tree.state, tree.items[0].listchain()
    assert not state.stack and tree.nodes["m.py"] not in state.stack

    def check_while_running() -> None:
        assert state.stack
        assert all(node in state.stack for node in chain)

    tree.run(tree.items[0], check_while_running)
    assert not state.stack
    assert all(node not in state.stack for node in chain)
