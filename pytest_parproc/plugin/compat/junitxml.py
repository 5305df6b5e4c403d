"""pytest's junitxml: ``record_testsuite_property`` and ``record_xml_attribute`` in tests that
run in worker processes land in the main process's ``--junitxml`` file, as serially.

Both fixtures find the file's writer in the config (``pytest_internals.junit_xml``). A worker
writes no file (``session._MAIN_PROCESS_ONLY``, ``inherit.MAIN_PROCESS_PLUGINS``), so there they
would write to nothing (a worker that collects) or to a forked copy of the main process's
writer that is never saved. In every worker the writer's place holds a ``Recorder``
(``start_in_worker``):

- a suite property goes to ``config.workeroutput``, which travels back when the worker's
  session ends; the main process adds it to its writer (``worker_finished``);
- a test's attributes go on that test's reports (``ATTRIBUTES``), which travel back with it;
  the main process gives them to its writer as it replays each report (``before_replay``),
  before the writer's own hook sees the report.

Threads share the main process's writer and need none of this.
"""

from __future__ import annotations

from typing import Any

import pytest

from .. import pytest_internals

#: the report attribute that carries a test's recorded xml attributes
ATTRIBUTES = "parproc_xml_attributes"
#: the ``workeroutput`` key of a worker's suite properties
PROPERTIES = "parproc_junit_properties"
PLUGIN_NAME = "parproc-junitxml-recorder"


class _Attributes:
    def __init__(self, recorded: dict[str, str]) -> None:
        self._recorded = recorded

    def add_attribute(self, name: str, value: object) -> None:
        self._recorded[str(name)] = str(value)


class Recorder:
    """What the two fixtures use of the main process's ``LogXML``, recorded."""

    def __init__(self, config: pytest.Config, family: str) -> None:
        self.config = config
        self.family = family
        #: node id -> xml attributes recorded by that test
        self.attributes: dict[str, dict[str, str]] = {}

    def add_global_property(self, name: str, value: object) -> None:
        output = getattr(self.config, "workeroutput", None)
        if output is not None:
            output.setdefault(PROPERTIES, []).append((str(name), str(value)))

    def node_reporter(self, nodeid: str) -> _Attributes:
        return _Attributes(self.attributes.setdefault(str(nodeid), {}))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Any:
        report = yield
        for key in {item.nodeid, str(getattr(item, "id", item.nodeid))}:
            recorded = self.attributes.get(key)
            if recorded:
                setattr(report, ATTRIBUTES, dict(recorded))
        if report.when == "teardown":
            self.attributes.pop(item.nodeid, None)
        return report


def start_in_worker(config: pytest.Config) -> None:
    """In a worker, where the main process writes ``--junitxml``: the recorder in the writer's
    place (a forked worker's copy of the writer included)."""
    if not getattr(config.option, "xmlpath", None):
        return
    inherited = pytest_internals.junit_xml(config)
    family = getattr(inherited, "family", None) or config.getini("junit_family")
    recorder = Recorder(config, str(family))
    pytest_internals.junit_xml(config, replace=recorder)
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(recorder, PLUGIN_NAME)


def before_replay(config: pytest.Config, report: pytest.TestReport) -> None:
    """In the main process, before a worker's report is logged: its test's xml attributes."""
    recorded: dict[str, str] | None = getattr(report, ATTRIBUTES, None)
    if not recorded:
        return
    writer = pytest_internals.junit_xml(config)
    if writer is None or isinstance(writer, Recorder):
        return
    reporter = writer.node_reporter(report)
    for name, value in recorded.items():
        reporter.add_attribute(name, value)


def worker_finished(config: pytest.Config, output: dict[str, Any]) -> None:
    """In the main process: a worker's suite properties, for the file's ``<properties>``."""
    writer = pytest_internals.junit_xml(config)
    if writer is None or isinstance(writer, Recorder):
        return
    for name, value in output.get(PROPERTIES, ()):
        writer.add_global_property(name, value)
