"""The ``RunSpec`` of a process run: what each worker needs to build its session like the main
process's."""

from __future__ import annotations

import os
import uuid

import pytest

from .. import compat, pytest_internals
from ..messages import RunSpec
from ..options import ParprocOptions
from .dask_cluster import DaskCluster


def run_spec(
    config: pytest.Config,
    options: ParprocOptions,
    cluster: DaskCluster | None,
    run_dir: str,
    n_units: int,
    fork: bool,
    items: list[pytest.Item],
    start_limit_s: float,
    live: bool,
) -> RunSpec:
    invocation = config.invocation_params
    fields = DaskCluster.spec_fields(cluster, items, config, n_units)
    n_workers, rootdir, files = fields or (max(2, min(options.n_jobs, n_units)), "", ())
    basetemp = pytest_internals.main_basetemp(config)
    return RunSpec(
        run_id=uuid.uuid4().hex,
        run_dir=run_dir,
        args=tuple(invocation.args) + compat.worker_args(config),
        invocation_dir=str(invocation.dir),
        # No more workers than units of work: each costs a process and a collection.
        n_workers=n_workers,
        basetemp=None if basetemp is None else str(basetemp),
        environment=tuple(os.environ.items()),
        timeout_s=options.timeout_s,
        start_limit_s=start_limit_s,
        max_tasks_per_worker=options.max_tasks_per_worker,
        max_worker_memory=options.max_worker_memory,
        fork=fork,
        worker_input=compat.worker_input(config),
        rootdir=rootdir,
        files=files,
        dask=fields is not None,
        live=live,
    )
