"""The public names: one list, every name importable from both packages."""

from __future__ import annotations

import pytest_parproc
from pytest_parproc import parallel


def test_the_lazy_table_and_all_agree() -> None:
    assert sorted(parallel._WHERE) == sorted(parallel.__all__)


def test_every_public_name_resolves_from_both_packages() -> None:
    worker_info = {"is_worker", "worker_count", "worker_id"}
    plugin_api = {"shared_fixture"}  # (the plugin's: imports pytest on first use)
    assert set(pytest_parproc.__all__) == {
        "__version__",
        *worker_info,
        *plugin_api,
        *parallel.__all__,
    }
    assert callable(pytest_parproc.shared_fixture)
    assert pytest_parproc.worker_id() == "main"
    assert not pytest_parproc.is_worker()
    for name in parallel.__all__:
        assert getattr(pytest_parproc, name) is getattr(parallel, name)
