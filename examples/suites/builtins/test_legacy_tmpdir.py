"""The legacy ``tmpdir`` and ``tmpdir_factory`` (pytest's legacypath plugin) agree with
``tmp_path`` and ``tmp_path_factory``: one base folder, whichever process runs the test, and in
the main process, where a shared fixture runs once per run."""

import pytest

from pytest_parproc import shared_fixture


@shared_fixture
def main_process_bases(tmpdir_factory, tmp_path_factory):
    return str(tmpdir_factory.getbasetemp()), str(tmp_path_factory.getbasetemp())


def test_the_factories_agree_in_the_main_process(main_process_bases):
    legacy, pathlib_base = main_process_bases
    assert legacy == pathlib_base


@pytest.mark.parametrize("n", range(6))
def test_legacy_and_pathlib_factories_agree(n, tmpdir, tmp_path, tmpdir_factory, tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    assert str(tmpdir_factory.getbasetemp()) == str(base)
    assert str(tmpdir) == str(tmp_path)
    assert tmp_path.parent == base
    made = tmpdir_factory.mktemp(f"legacy{n}")
    assert str(made.dirpath()) == str(base)
