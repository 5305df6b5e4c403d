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


def test_parametrization_key_comes_from_callspec_indices(pytester: pytest.Pytester) -> None:
    items = pytester.getitems(
        """
        import pytest

        @pytest.mark.parametrize("b", ["x", "y"])
        @pytest.mark.parametrize("a", [object(), object()])
        def test_p(a, b):
            pass

        def test_plain():
            pass
        """
    )
    keys = [pytest_internals.parametrization_key(item) for item in items]
    assert keys[-1] is None  # test_plain
    assert all(key is not None for key in keys[:-1])
    assert {key[0].split("::")[-1] for key in keys[:-1] if key} == {"test_p"}
    # The indices differ between pytest versions (per list in pytest 8, per combination in
    # pytest 9.2), but in one version they are the same in every process and tell the cases
    # apart without their ids.
    assert len({key for key in keys[:-1]}) == 4
    assert all(name in ("a", "b") for key in keys[:-1] if key for name, _ in key[1])
