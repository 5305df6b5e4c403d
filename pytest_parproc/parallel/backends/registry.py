"""Backend names: the built-in ones, those registered by users, and which one is the default."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

from .base import ParallelBackendBase

BackendFactory = Callable[..., ParallelBackendBase]

# Built-ins are imported on first use so that importing the engine stays cheap (a worker
# process imports it before running its first task).
_BUILTIN = {
    "loky": ("pytest_parproc.parallel.backends.loky", "LokyBackend"),
    "multiprocessing": ("pytest_parproc.parallel.backends.mp_pool", "MultiprocessingBackend"),
    "threading": ("pytest_parproc.parallel.backends.thread_pool", "ThreadingBackend"),
    "sequential": ("pytest_parproc.parallel.backends.sequential", "SequentialBackend"),
    # dask.distributed is an optional extra: the module imports without it, and the backend
    # then says which extra to install.
    "dask": ("pytest_parproc.parallel.backends.dask_backend", "DaskBackend"),
}

_lock = threading.Lock()
_registered: dict[str, BackendFactory] = {}
_default_name = "loky"


def register_parallel_backend(
    name: str, factory: BackendFactory, make_default: bool = False
) -> None:
    """Make ``factory`` available as ``Parallel(backend=name)``.

    ``factory`` is called with the backend parameters given to ``parallel_config`` (and
    ``nesting_level``) and must return a ``ParallelBackendBase``. With ``make_default`` the
    backend is used when a call names none.
    """
    global _default_name
    if not isinstance(name, str) or not name:
        raise ValueError(f"a backend name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"the factory registered for backend {name!r} is not callable: {factory!r}")
    with _lock:
        _registered[name] = factory
        if make_default:
            _default_name = name


def default_backend_name() -> str:
    return _default_name


def known_backend_names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_registered))


def backend_factory(name: str) -> BackendFactory:
    """The factory for ``name``; an unknown name is a ValueError that lists the known ones."""
    with _lock:
        factory = _registered.get(name)
    if factory is not None:
        return factory
    if name in _BUILTIN:
        module_name, class_name = _BUILTIN[name]
        found: BackendFactory = getattr(importlib.import_module(module_name), class_name)
        return found
    # "Invalid backend:" as joblib says it (a pytest.raises(match=...) may depend on it)
    raise ValueError(f"Invalid backend: {name}, expected one of {known_backend_names()}")


def make_backend(name: str, **params: Any) -> ParallelBackendBase:
    backend = backend_factory(name)(**params)
    if not isinstance(backend, ParallelBackendBase):
        raise TypeError(
            f"the factory of backend {name!r} returned {backend!r}, not a ParallelBackendBase"
        )
    return backend
