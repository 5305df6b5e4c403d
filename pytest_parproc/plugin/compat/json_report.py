"""pytest-json-report: ``json_metadata``, and each phase's output and log records, in the report
the main process writes (checked against pytest-json-report 1.5).

pytest-json-report keeps a test's details on the test item while it runs and attaches them to
each of its reports (``report._json_report_extra``); the report travels to the main process
with the report's other attributes, where ``JSONReport`` writes the file. Its xdist support
registers ``JSONReportWorker`` (details, no file) where ``config.workerinput`` exists. A worker
that collects gets that from its own ``pytest_configure`` (``--json-report`` stays on there).
A forked worker drops the main process's ``JSONReport`` (``inherit.MAIN_PROCESS_PLUGINS``),
so it registers a ``JSONReportWorker`` in its place (``start_in_forked_worker``).

On threads, pytest-json-report collects each phase's log records with a handler on the root
logger, which would get the records of the tests running beside it: unless its log section is
omitted (``--json-report-omit log``), tests run in the serial lane (``alone_reason``).
"""

from __future__ import annotations

import pytest

PLUGIN_NAME = "parproc-json-report-worker"


def start_in_forked_worker(config: pytest.Config) -> None:
    if not getattr(config.option, "json_report", False):
        return
    try:
        from pytest_jsonreport.plugin import JSONReportWorker
    except ImportError:
        return

    class ForkedWorker(JSONReportWorker):  # type: ignore[misc]
        # The main process's JSONReport added pytest-json-report's hook specifications, and
        # pytest_addhooks is historic: adding them twice is an error.
        pytest_addhooks = None

    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        # pytest_configure is a historic hook: the plugin gets it on registration.
        config.pluginmanager.register(ForkedWorker(config), PLUGIN_NAME)


def alone_reason(config: pytest.Config) -> str | None:
    """Why tests cannot run concurrently on threads because of pytest-json-report."""
    option = config.option
    if not getattr(option, "json_report", False) or "log" in getattr(
        option, "json_report_omit", ()
    ):
        return None
    return (
        "pytest-json-report records log records with one handler for the process "
        "(--json-report-omit log lets tests run concurrently)"
    )
