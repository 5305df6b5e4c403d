"""The options of a run on dask (``--par-backend=dask``): the scheduler's address, and what such
a run refuses."""

from __future__ import annotations

import pytest


def parse_address(raw: str, source: str) -> str:
    """--par-scheduler's value: ``scheme://host:port`` or ``host:port``."""
    address = raw.strip()
    scheme, _, rest = address.rpartition("://")
    host, _, port = rest.rpartition(":")
    if (scheme and not scheme.isalnum()) or not host or not port.isdigit():
        raise pytest.UsageError(
            f"{source}: expected a dask scheduler address such as tcp://host:8786, got {raw!r}"
        )
    return address


def check_options(
    backend: str, scheduler: str | None, sources: dict[str, str], recycling: dict[str, str]
) -> None:
    """What a run on dask cannot do, and a scheduler without the dask backend."""
    if scheduler is not None and backend != "dask":
        raise pytest.UsageError(
            f"{sources['scheduler']}: a dask scheduler is only used with --par-backend=dask "
            f"(the backend is {backend!r})"
        )
    if backend != "dask":
        return
    for name, flag in recycling.items():
        if name in sources:
            raise pytest.UsageError(
                f"{sources[name]}: {flag} recycles loky workers; dask workers are restarted "
                "by their nanny (its memory limit), not by pytest-parproc"
            )
