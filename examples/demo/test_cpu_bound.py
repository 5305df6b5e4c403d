"""Tests that compute: parallel workers use more than one core."""

import pytest


def fibonacci(n: int) -> int:
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


@pytest.mark.parametrize("n", [24, 25, 26, 25, 24, 26])
def test_computes(n):
    assert fibonacci(n) > 0
