"""Tests that wait (network, disk, sleep): parallel workers overlap the waiting."""

import time

import pytest


@pytest.mark.parametrize("delay_s", [0.2, 0.3, 0.4, 0.3, 0.2, 0.4, 0.3, 0.3])
def test_waits(delay_s, warm_cache):
    time.sleep(delay_s)
    assert warm_cache["ready"]


@pytest.mark.parametrize("request_number", range(6))
def test_slow_service(request_number):
    time.sleep(0.25)
