"""Fixtures for the engine tests: every backend, and a spy that records what is dispatched."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


def spy_backend(name: str) -> tuple[Any, list[int], list[int]]:
    """An instance of backend ``name`` that records each batch size and the number of
    batches in flight at each submission."""
    base = registry.backend_factory(name)
    sizes: list[int] = []
    in_flight_seen: list[int] = []
    outstanding: set[int] = set()

    class Spy(base):  # type: ignore[misc, valid-type]
        def submit(self, batch: Any, on_done: Any) -> None:
            sizes.append(len(batch))
            outstanding.add(batch.key)
            in_flight_seen.append(len(outstanding))

            def done(done_batch: Any, outcome: Any) -> None:
                outstanding.discard(done_batch.key)
                on_done(done_batch, outcome)

            super().submit(batch, done)

    return Spy(), sizes, in_flight_seen
