"""The private pytest names the plugin relies on (all used in plugin/pytest_internals.py).
If a pytest release changes one, this fails loudly rather than runs going subtly wrong."""

from __future__ import annotations

import inspect

import _pytest.config
import pytest

from pytest_parproc.plugin import pytest_internals

pytest_plugins = ["pytester"]


def test_prepareconfig_exists_with_args_and_plugins() -> None:
    parameters = list(inspect.signature(_pytest.config._prepareconfig).parameters)
    assert parameters[:2] == ["args", "plugins"]


def test_config_configure_and_unconfigure_methods_exist() -> None:
    assert callable(pytest.Config._do_configure)
    assert callable(pytest.Config._ensure_unconfigure)


def test_tmp_path_factory_is_on_the_config(pytestconfig: pytest.Config) -> None:
    assert isinstance(pytestconfig._tmp_path_factory, pytest.TempPathFactory)  # type: ignore[attr-defined]
    assert pytest_internals.main_basetemp(pytestconfig).is_dir()


def test_a_config_built_like_pytest_main(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider --tb=native\n")
    config = pytest_internals.prepare_config(["-q"], [])
    try:
        assert config.option.tbstyle == "native"  # addopts from the ini file applied
        pytest_internals.configure(config)
        assert config.pluginmanager.get_plugin("terminalreporter") is not None
    finally:
        pytest_internals.unconfigure(config)
