"""What other plugins need from a parallel run, one module per plugin (or convention), each
with the why and the plugin versions checked. Used by the runners; imports from neither."""

from __future__ import annotations

from typing import Any

import pytest

from . import (
    asyncio_loops,
    benchmark,
    coverage,
    django,
    json_report,
    junitxml,
    logging_plugin,
    randomly,
    rerunfailures,
    syrupy,
    timeout,
)


def worker_input(config: pytest.Config) -> dict[str, Any]:
    """What other plugins' xdist support puts in a worker's ``config.workerinput`` (their
    ``pytest_configure_node``), for every worker of this run."""
    return {
        **coverage.worker_input(config),
        **randomly.worker_input(config),
        **rerunfailures.worker_input(config),
        **logging_plugin.worker_input(config),
    }


def declare_idle_threads(config: pytest.Config) -> None:
    """In the main process, before it forks its workers: other plugins' threads that are safe
    to fork beside."""
    rerunfailures.declare_idle_threads(config)


def start_in_worker(config: pytest.Config) -> None:
    """In every worker process, once its config looks like an xdist worker's."""
    rerunfailures.start_in_worker(config)
    benchmark.start_in_worker(config)
    junitxml.start_in_worker(config)
    logging_plugin.start_in_worker(config)


def worker_args(config: pytest.Config) -> tuple[str, ...]:
    """What a worker that collects adds to the main process's arguments."""
    return coverage.worker_args(config)


def start_in_forked_worker(config: pytest.Config) -> None:
    """What a forked worker does for other plugins when it takes the main process's session
    over (after ``xdist.attach``)."""
    coverage.start_in_forked_worker(config)
    json_report.start_in_forked_worker(config)


def finish_in_forked_worker(config: pytest.Config) -> None:
    """What a forked worker does for other plugins when its session ends (it runs no
    session-finish hook: those are the main process's)."""
    syrupy.finish_in_worker(config)


def worker_finished(config: pytest.Config, output: dict[str, Any]) -> None:
    """In the main process: a worker's ``config.workeroutput``, when its session ended."""
    syrupy.worker_finished(config, output)
    junitxml.worker_finished(config, output)


def before_replay(config: pytest.Config, report: pytest.TestReport) -> None:
    """In the main process, before a report from a worker is logged."""
    junitxml.before_replay(config, report)
    logging_plugin.before_replay(config, report)


def reports_missing(config: pytest.Config) -> list[str]:
    """A worker died, so what it would have sent is missing: what other plugins then do, as
    lines for the summary."""
    return [line for line in (syrupy.reports_missing(config),) if line]


def clean_up(config: pytest.Config) -> None:
    """In the main process, after the other plugins' session finish."""
    syrupy.clean_up(config)


def alone_reason(config: pytest.Config, item: pytest.Item) -> str | None:
    """Why a test cannot share the process with concurrent tests (the threading backend)
    because of another plugin."""
    return (
        coverage.alone_reason(config, item)
        or json_report.alone_reason(config)
        or timeout.alone_reason(item)
        or asyncio_loops.alone_reason(item)
        or benchmark.alone_reason(config, item)
        or django.alone_reason(item)
        or _asked_alone(config, item)
    )


def runs_alone(config: pytest.Config, item: pytest.Item) -> bool:
    """Process backends: whether a test runs in the main process, alone, after the parallel
    part of the run, because of another plugin (or its ``pytest_parproc_run_alone``)."""
    return benchmark.runs_alone(config, item) or bool(_asked_alone(config, item))


def _asked_alone(config: pytest.Config, item: pytest.Item) -> Any:
    """``pytest_parproc_run_alone``'s answer for ``item``; not asked where no plugin or
    conftest implements it (the usual case): ``item.ihook`` is computed afresh for each test,
    which costs more than the rest of planning it."""
    if not config.hook.pytest_parproc_run_alone.get_hookimpls():
        return None
    return item.ihook.pytest_parproc_run_alone(item=item)


def whole_run_reason(items: list[pytest.Item]) -> str | None:
    """Why no test of the run can run on threads (the threading backend) because of another
    plugin: pytest's own loop then runs them all in the main thread."""
    return rerunfailures.whole_run_reason(items)
