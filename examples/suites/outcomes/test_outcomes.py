import sys

import pytest


def test_passes():
    pass


def test_fails():
    assert 1 + 1 == 3


def test_skips():
    pytest.skip("skipped on purpose")


@pytest.mark.skipif(sys.platform != "nonexistent", reason="a condition that always holds")
def test_skipif():
    pass


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False


@pytest.mark.xfail(reason="fixed already")
def test_xpass():
    pass


@pytest.mark.xfail(strict=True, reason="must fail")
def test_xpass_strict():
    pass


@pytest.mark.xfail(raises=ZeroDivisionError)
def test_xfail_raises():
    1 / 0


def test_imperative_xfail():
    pytest.xfail("decided at run time")


@pytest.mark.parametrize("value", [1, 2, pytest.param(3, marks=pytest.mark.xfail)])
def test_param_marks(value):
    assert value < 3


class TestSkippedClass:
    pytestmark = pytest.mark.skip(reason="whole class")

    def test_a(self):
        pass
