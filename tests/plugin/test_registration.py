"""The plugin is registered under the pytest11 entry point ``parproc`` and can be disabled."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]


def test_the_entry_point_names_the_plugin_module() -> None:
    (entry,) = [entry for entry in entry_points(group="pytest11") if entry.name == "parproc"]
    assert entry.value == "pytest_parproc.plugin"


def test_pytest_loads_it(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("parproc")


def test_it_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:parproc")
    result.assert_outcomes(passed=1)
