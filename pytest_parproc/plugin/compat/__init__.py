"""What other plugins need from a parallel run, one module per plugin (or convention), each
with the why and the plugin versions checked. Used by the runners; imports from neither."""

from __future__ import annotations

from typing import Any

import pytest

from . import coverage, randomly


def worker_input(config: pytest.Config) -> dict[str, Any]:
    """What other plugins' xdist support puts in a worker's ``config.workerinput`` (their
    ``pytest_configure_node``), for every worker of this run."""
    return {**coverage.worker_input(config), **randomly.worker_input(config)}


def worker_args(config: pytest.Config) -> tuple[str, ...]:
    """What a worker that collects adds to the main process's arguments."""
    return coverage.worker_args(config)
