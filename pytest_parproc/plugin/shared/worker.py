"""A worker's side of shared fixtures: the values reach its tests, and it never tears them
down."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cloudpickle
import pytest

from ..pytest_internals import fixture_runs
from .instances import PROVIDER_NAME, Provider
from .main import RUN_NAME
from .marking import configured_names

#: what a forked worker took off the state it inherited: the suspended generators of the main
#: process's fixtures among it. Kept alive until the worker leaves (with ``os._exit``), so
#: that no garbage collection closes them and runs their teardown code here.
_kept: list[Any] = []


def attach(session: pytest.Session, inherited: bool, fetch: Callable[[], bytes | None]) -> None:
    """Make the run's shared values this worker's: a fork of the main process forgets the
    fixtures the main process set up (their values come from the inherited provider); any other
    worker gets them pickled (``fetch``: the bytes the main process published, or None)."""
    config = session.config
    if inherited:
        manager = config.pluginmanager
        run = manager.get_plugin(RUN_NAME)
        if run is not None:
            manager.unregister(run)  # (the main process's: its reports, its teardown)
        provider = manager.get_plugin(PROVIDER_NAME)
        if provider is not None:
            _kept.append(fixture_runs.forget_set_up_nodes(session))
            _kept.extend(fixture_runs.detach(definition) for definition in provider.ran_in_main)
        return
    data = fetch()
    names = frozenset(configured_names(config))
    # (with nothing published, still answered: a shared fixture is never set up in a worker)
    portable = cloudpickle.loads(data) if data is not None else ([], {}, [])
    config.pluginmanager.register(Provider.from_portable(names, portable), PROVIDER_NAME)
