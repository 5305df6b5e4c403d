"""A session fixture, set up once per worker: watch the timing table's start-up column."""

import time

import pytest


@pytest.fixture(scope="session")
def warm_cache():
    time.sleep(0.2)  # an expensive resource, built once per worker
    return {"ready": True}
