import os
import threading

#: per thread: with --par-backend=threading, other tests of this module run at the same time
EVENTS = threading.local()


def record(event):
    path = os.environ.get("PARPROC_EVENTS")
    if path:
        with open(path, "a") as events:
            events.write(f"{event} {os.getpid()}\n")


def setup_module(module):
    record("setup xunit_module")


def teardown_module(module):
    record("teardown xunit_module")


def setup_function(function):
    EVENTS.last = function.__name__


def test_function_one():
    assert EVENTS.last == "test_function_one"


def test_function_two():
    assert EVENTS.last == "test_function_two"


class TestXunitClass:
    @classmethod
    def setup_class(cls):
        record("setup xunit_class")
        cls.shared = threading.local()  # per thread, as EVENTS

    @classmethod
    def teardown_class(cls):
        record("teardown xunit_class")

    def setup_method(self, method):
        self.shared.last = method.__name__

    def test_a(self):
        assert self.shared.last == "test_a"

    def test_b(self):
        assert self.shared.last == "test_b"
