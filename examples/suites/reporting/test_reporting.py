import time

import pytest


@pytest.mark.parametrize("n", range(8))
def test_quick(n):
    time.sleep(0.01)


def test_prints():
    print("PRINTED-BY-TEST")


def test_slowest():
    time.sleep(0.5)


def test_fails():
    print("output of a failing test")
    assert "expected" == "actual"
