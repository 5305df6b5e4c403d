"""The only place that touches private pytest API; each use says why it cannot be avoided.

``tests/plugin/test_pytest_internals.py`` checks every name used here, so a pytest release that
changes one fails that test loudly instead of breaking runs in subtle ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from .messages import ParamKey


def prepare_config(args: Sequence[str], plugins: Sequence[object]) -> pytest.Config:
    """A config built from command-line arguments exactly as ``pytest.main(args)`` builds it
    (ini file, ``addopts``, ``PYTEST_ADDOPTS``, entry-point plugins, initial conftests).

    pytest has no public constructor that does all of this: ``Config.fromdictargs`` skips
    ``addopts``. A worker process needs the same configuration as the main process, so it takes
    the path ``pytest.main`` takes: ``_pytest.config._prepareconfig``.
    """
    from _pytest.config import _prepareconfig

    return _prepareconfig(list(args), list(plugins))


def configure(config: pytest.Config) -> None:
    """Run ``pytest_configure`` as ``pytest.main`` does (``Config._do_configure``): a worker
    drives its session's stages itself, because its tests run between engine tasks rather than
    inside one ``pytest_cmdline_main`` call."""
    config._do_configure()


def unconfigure(config: pytest.Config) -> None:
    """Run ``pytest_unconfigure`` and the config's cleanups (``Config._ensure_unconfigure``)."""
    config._ensure_unconfigure()


def parametrization_key(item: pytest.Item) -> ParamKey | None:
    """Where a parametrized test sits: its node id without the ``[...]`` part, and the index of
    each parameter value in its ``parametrize`` list (``item.callspec.indices``).

    Ids built from values that differ between processes (``datetime.now()``, object
    addresses) differ in each worker; the indices do not. ``callspec`` is documented, its
    ``indices`` are not, hence this one place.
    """
    callspec = getattr(item, "callspec", None)
    indices = getattr(callspec, "indices", None)
    if not isinstance(indices, dict):
        return None
    nodeid = item.nodeid
    base = nodeid[: nodeid.find("[", nodeid.rfind("::"))] if nodeid.endswith("]") else nodeid
    return base, tuple(sorted((str(name), int(index)) for name, index in indices.items()))


def main_basetemp(config: pytest.Config) -> Path | None:
    """The main process's base temporary directory, created now if needed (None when the
    ``tmpdir`` plugin is disabled with ``-p no:tmpdir``: then no test has ``tmp_path``).

    Workers get one subdirectory each, as pytest-xdist does, so ``tmp_path`` stays distinct and
    sits where users look for it. The factory is only public as a fixture; the config holds it as
    ``_tmp_path_factory`` (set by pytest's ``tmpdir`` plugin in ``pytest_configure``).
    """
    factory: pytest.TempPathFactory | None = getattr(config, "_tmp_path_factory", None)
    return None if factory is None else factory.getbasetemp()
