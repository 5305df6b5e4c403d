"""Fixtures for the engine tests: the backends to run the contract against, the registry."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
from dask_cluster import dask_cluster

from pytest_parproc.parallel.backends import registry

#: The dask backend runs the contract on a real scheduler and workers where the extra is installed.
DASK = ["dask"] if importlib.util.find_spec("distributed") else []
ALL_BACKENDS = ["loky", "multiprocessing", "threading", "sequential", *DASK]
PROCESS_BACKENDS = ["loky", "multiprocessing", *DASK]
PARALLEL_BACKENDS = ["loky", "multiprocessing", "threading", *DASK]


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """The default ``distributed.Client`` of this process, on a scheduler and two
    single-threaded workers started as subprocesses (dask's own command line). Per module: a
    session fixture's teardown may come after the check that no process is left (pytest 8.0)."""
    import distributed

    with dask_cluster(workers=2) as address, distributed.Client(address) as client:
        yield client


def _named(request: pytest.FixtureRequest) -> str:
    if request.param == "dask":
        request.getfixturevalue("dask_client")
    return str(request.param)


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return _named(request)


@pytest.fixture(params=PARALLEL_BACKENDS)
def parallel_backend_name(request: pytest.FixtureRequest) -> str:
    return _named(request)


@pytest.fixture(params=PROCESS_BACKENDS)
def process_backend(request: pytest.FixtureRequest) -> str:
    return _named(request)


@pytest.fixture(params=["loky", "multiprocessing"])
def memmapping_backend(request: pytest.FixtureRequest) -> str:
    """Backends whose workers share this machine's files: large arrays travel as memmaps (the
    dask backend's workers may be elsewhere; arrays travel pickled, or by ``scatter``)."""
    return str(request.param)


@pytest.fixture
def restore_registry() -> Iterator[None]:
    saved = dict(registry._registered)
    default = registry._default_name
    yield
    registry._registered.clear()
    registry._registered.update(saved)
    registry._default_name = default
