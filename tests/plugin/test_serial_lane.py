"""Which tests the threading backend runs alone: how ini entries match node ids."""

from __future__ import annotations

import pytest

from pytest_parproc.plugin.threads.serial_lane import _PATCHES, _matches


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("tests/db/test_x.py::test_y", True),  # the id itself
        ("tests/db/test_x.py::test_y[1]", False),  # another parametrized case
        ("tests/db/test_x.py", True),  # its file
        ("tests/db", True),  # its directory
        ("tests/db/", True),
        ("tests/d", False),  # not a prefix at a boundary
        ("tests/db/test_x.py::test", False),
        ("*::test_y*", True),  # a glob
        ("tests/*/test_x.py::*", True),
    ],
)
def test_ini_entries_match_ids_files_directories_and_globs(pattern: str, expected: bool) -> None:
    assert _matches("tests/db/test_x.py::test_y[0]", pattern) is expected


@pytest.mark.parametrize(
    ("source", "patches"),
    [
        ("@mock.patch('os.getcwd')", True),
        ("@patch('os.getcwd')", True),
        ("with patch.object(module, 'name'):", True),
        ("with unittest.mock.patch.dict(os.environ):", True),
        ("@freeze_time('2020-01-01')", True),
        ("response = client.patch('/items/1')", False),  # an HTTP PATCH, not a patcher
        ("from unittest.mock import patch", False),
        ("dispatch(event)", False),
    ],
)
def test_patchers_are_recognised_in_source(source: str, patches: bool) -> None:
    assert (_PATCHES.search(source) is not None) is patches
