"""Planning: the collected tests cut into units of work for the workers (pure, no I/O).

Three steps. Blocks: the tests that must run together, in collection order (one test, a
module, a class, a ``parproc_group``), as ``--par-dist`` says. Costs: each test's recorded
duration, the mean of the known ones for a test never timed. Units: blocks taken longest
first (a long block started last would leave the others idle at the end), consecutive blocks
packed into a unit until it holds a share of the work left that shrinks as the plan goes on,
so the last units are small and no worker idles while another still has a queue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .messages import ParamKey, Unit

#: What a test costs beyond its own duration (sending its reports, replaying them), so that
#: near-empty tests are not planned as free.
OVERHEAD_S = 0.0005
#: Units hold at most this share of the work left per worker: 1/2 keeps at least two units
#: per worker in flight, and smaller ones toward the end.
UNIT_SHARE = 0.5


@dataclass(frozen=True)
class PlannedItem:
    """What planning needs to know of a test: its position, node id, module, the class or
    module it belongs to (``scope``), its ``parproc_group`` (if any), and its parametrization
    key (see ``ParamKey``)."""

    index: int
    nodeid: str
    group: str
    key: ParamKey | None = None
    scope: str = ""
    mark_group: str | None = None


def group_of(nodeid: str) -> str:
    """The module part of a node id (``pkg/test_a.py::TestX::test_y[1]`` -> ``pkg/test_a.py``)."""
    return nodeid.split("::", 1)[0]


def scope_of(nodeid: str) -> str:
    """The innermost class of a test, or its module (``a.py::TestX::test_y`` -> ``a.py::TestX``,
    ``a.py::test_y[1]`` -> ``a.py``), as pytest-xdist's ``loadscope`` groups them."""
    bracket = nodeid.find("[")
    base = nodeid if bracket < 0 else nodeid[:bracket]
    return base.rsplit("::", 1)[0]


def plan_units(
    items: Sequence[PlannedItem],
    n_workers: int,
    dist: str = "auto",
    durations: Mapping[str, float] | None = None,
) -> list[Unit]:
    if not items:
        return []
    n_workers = max(1, n_workers)
    costs = _costs(items, durations or {})
    blocks = _blocks(items, dist, costs, n_workers)
    block_costs = [sum(costs[item.index] for item in block) for block in blocks]
    order = sorted(range(len(blocks)), key=lambda b: -block_costs[b])  # stable: ties keep order
    left = sum(block_costs)
    units: list[list[PlannedItem]] = []
    current: list[PlannedItem] = []
    current_cost = 0.0
    for position in order:
        cost = block_costs[position]
        if current and current_cost + cost > UNIT_SHARE * left / n_workers:
            units.append(current)
            left -= current_cost
            current, current_cost = [], 0.0
        current.extend(blocks[position])
        current_cost += cost
    if current:
        units.append(current)
    return [
        Unit(tuple((item.index, item.nodeid) for item in unit), tuple(item.key for item in unit))
        for unit in units
    ]


def _costs(items: Sequence[PlannedItem], durations: Mapping[str, float]) -> dict[int, float]:
    known = [durations[item.nodeid] for item in items if item.nodeid in durations]
    mean = sum(known) / len(known) if known else 0.0
    return {item.index: max(0.0, durations.get(item.nodeid, mean)) + OVERHEAD_S for item in items}


def _blocks(
    items: Sequence[PlannedItem], dist: str, costs: Mapping[int, float], n_workers: int
) -> list[list[PlannedItem]]:
    if dist == "load":
        return [[item] for item in items]
    if dist == "loadgroup":
        return _grouped(items, lambda item: item.mark_group or f"\0{item.index}")
    if dist == "loadscope":
        return _grouped(items, lambda item: item.scope or group_of(item.nodeid))
    modules = _grouped(items, lambda item: item.group)
    if dist == "loadfile":
        return modules
    # auto: a module stays whole unless it holds more than a worker's share of the work; then
    # it is cut, in order, into pieces of at most half a share.
    share = sum(costs.values()) / n_workers
    blocks: list[list[PlannedItem]] = []
    for module in modules:
        if sum(costs[item.index] for item in module) <= share:
            blocks.append(module)
            continue
        piece: list[PlannedItem] = []
        piece_cost = 0.0
        for item in module:
            if piece and piece_cost + costs[item.index] > share / 2:
                blocks.append(piece)
                piece, piece_cost = [], 0.0
            piece.append(item)
            piece_cost += costs[item.index]
        blocks.append(piece)
    return blocks


def _grouped(
    items: Sequence[PlannedItem], key: Callable[[PlannedItem], str]
) -> list[list[PlannedItem]]:
    groups: dict[str, list[PlannedItem]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())
