"""What planning reads from the collected tests: position, node id, module, scope, group mark."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from .. import pytest_internals
from ..names import GROUP_MARK
from .scheduling import PlannedItem, module_of, scope_of


def planned_items(items: Sequence[pytest.Item], indices: list[int], dist: str) -> list[PlannedItem]:
    planned = []
    for index in indices:
        item = items[index]
        nodeid = item.nodeid
        key = pytest_internals.parametrization_key(item)
        group = group_mark(item) if dist == "loadgroup" else None
        planned.append(PlannedItem(index, nodeid, module_of(nodeid), key, scope_of(nodeid), group))
    return planned


def group_mark(item: pytest.Item) -> str | None:
    """The name in a test's ``parproc_group(name)`` mark (the closest one), if it has one."""
    mark = item.get_closest_marker(GROUP_MARK)
    if mark is None:
        return None
    name = mark.kwargs.get("name", mark.args[0] if mark.args else None)
    if not isinstance(name, str) or not name:
        raise pytest.UsageError(
            f"{item.nodeid}: the {GROUP_MARK} mark needs a group name, "
            f'@pytest.mark.{GROUP_MARK}("name"); got args={mark.args!r} kwargs={mark.kwargs!r}'
        )
    return name
