"""pytest-benchmark: benchmarks timed alone, their table and ``--benchmark-json`` written as
serially (checked against pytest-benchmark 5.3).

Under pytest-xdist the plugin turns itself off with a warning: timings taken beside other
tests mean little. Here the tests that use its ``benchmark`` fixture run alone, after the
parallel part of the run, in the main process through pytest's own protocol (process
backends), or in the serial lane (threads), so the main process's ``BenchmarkSession`` times
them undisturbed and writes the table, the JSON file and the saved runs as serially
(``runs_alone``). With ``--benchmark-disable`` (each benchmark runs once, untimed) or
``--benchmark-skip`` they run in parallel with the rest.

A worker that collects looks like an xdist worker to the plugin, which then warns, as it ends,
that benchmarks are disabled: not so here, so the worker's plugin is told not to
(``start_in_worker``).
"""

from __future__ import annotations

import pytest

FIXTURE = "benchmark"


def _timing(config: pytest.Config) -> bool:
    """Whether the plugin times benchmarks in this run."""
    session = getattr(config, "_benchmarksession", None)  # the plugin's, set at configure
    if session is None:
        return False
    return not getattr(session, "disabled", True) and not getattr(session, "skip", False)


def runs_alone(config: pytest.Config, item: pytest.Item) -> bool:
    """Whether ``item`` is a benchmark to time alone, after the parallel part."""
    return FIXTURE in getattr(item, "fixturenames", ()) and _timing(config)


def alone_reason(config: pytest.Config, item: pytest.Item) -> str | None:
    """On threads: why a test runs in the serial lane because of pytest-benchmark."""
    if not runs_alone(config, item):
        return None
    return "pytest-benchmark times it, undisturbed by other tests"


class _QuietWorker:
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config: pytest.Config) -> None:
        session = getattr(config, "_benchmarksession", None)
        if session is not None and hasattr(session, "xdist_warning"):
            session.xdist_warning = False  # its benchmarks run in the main process


def start_in_worker(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("parproc-benchmark-worker"):
        config.pluginmanager.register(_QuietWorker(), "parproc-benchmark-worker")
