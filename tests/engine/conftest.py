"""Fixtures for the engine tests: the backends to run the contract against, the registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_parproc.parallel.backends import registry

ALL_BACKENDS = ["loky", "multiprocessing", "threading", "sequential"]
PROCESS_BACKENDS = ["loky", "multiprocessing"]
PARALLEL_BACKENDS = ["loky", "multiprocessing", "threading"]


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=PARALLEL_BACKENDS)
def parallel_backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=PROCESS_BACKENDS)
def process_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def restore_registry() -> Iterator[None]:
    saved = dict(registry._registered)
    default = registry._default_name
    yield
    registry._registered.clear()
    registry._registered.update(saved)
    registry._default_name = default
