"""Planning: the collected tests cut into units of work for the workers (pure, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .messages import ParamKey, Unit


@dataclass(frozen=True)
class PlannedItem:
    """What planning needs to know of a test: its position, node id and group (its module),
    and its parametrization key (see ``ParamKey``)."""

    index: int
    nodeid: str
    group: str
    key: ParamKey | None = None


def group_of(nodeid: str) -> str:
    """The module part of a node id (``pkg/test_a.py::TestX::test_y[1]`` -> ``pkg/test_a.py``)."""
    return nodeid.split("::", 1)[0]


def plan_units(items: Sequence[PlannedItem], n_workers: int) -> list[Unit]:
    """Keep each module's tests together and in collection order (suites are rarely perfectly
    isolated: a test may rely on an earlier one of its module), and split a module only when it
    holds more than a worker's share of the tests, into chunks of half a share. Larger units go
    first, so the longest work starts early and the small units fill the gaps at the end."""
    if not items:
        return []
    share = math.ceil(len(items) / max(1, n_workers))
    chunk = max(1, math.ceil(share / 2))
    groups: dict[str, list[PlannedItem]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    units: list[list[PlannedItem]] = []
    for members in groups.values():
        if len(members) <= share:
            units.append(members)
        else:
            units.extend(members[start : start + chunk] for start in range(0, len(members), chunk))
    units.sort(key=len, reverse=True)  # stable: equal sizes keep collection order
    return [
        Unit(tuple((item.index, item.nodeid) for item in unit), tuple(item.key for item in unit))
        for unit in units
    ]
