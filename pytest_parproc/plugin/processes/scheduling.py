"""Planning: the collected tests cut into units of work for the workers (pure, no I/O).

Three steps. Blocks: the tests that must run together, in collection order (one test, a
module, a class, a ``parproc_group``), as ``--par-dist`` says. Costs: each test's recorded
duration, the mean of the known ones for a test never timed. Units: blocks taken longest
first (a long block started last would leave the others idle at the end), consecutive blocks
packed into a unit until it holds a share of the work left that shrinks as the plan goes on,
so the last units are small and no worker idles while another still has a queue.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..messages import ParamKey, Unit

#: What a test costs beyond its own duration (sending its reports, replaying them), so that
#: near-empty tests are not planned as free.
OVERHEAD_S = 0.0005
#: How far past the ideal end (the work spread evenly) a plan may go before modules are cut.
BALANCE_SLACK = 0.1
#: Modules are not cut for less than this (seconds): keeping a module whole (in order, one set-up
#: of its fixtures) is worth more than a few milliseconds of balance.
MIN_CUT_GAIN_S = 0.1
#: A block is cut toward the end of a plan only if its first test costs at most this share of
#: a unit more than its other tests (more suggests a shared fixture set up by the first one).
CUT_SETUP_SLACK = 0.1
#: Units hold at most this share of the work left per worker: 1/2 keeps at least two units
#: per worker in flight, and smaller ones toward the end.
UNIT_SHARE = 0.5


@dataclass(slots=True)
class PlannedItem:
    """What planning needs to know of a test: its position, node id, module, the class or
    module it belongs to (``scope``), its ``parproc_group`` (if any), and its parametrization
    key (see ``ParamKey``). Not frozen: one is made for every test of a run, and a frozen
    dataclass takes twice as long to make."""

    index: int
    nodeid: str
    module: str
    key: ParamKey | None = None
    scope: str = ""
    group: str | None = None


def module_of(nodeid: str) -> str:
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
    costs, min_gain = _costs(items, durations or {})
    timed = min_gain > 0
    blocks = _blocks(items, dist, costs, n_workers, min_gain)
    block_costs = [_cost(block, costs) for block in blocks]
    order = sorted(range(len(blocks)), key=lambda b: -block_costs[b])  # stable: ties keep order
    queue = deque((blocks[b], block_costs[b]) for b in order)
    left = sum(block_costs)
    cuttable = dist in ("auto", "load")
    units: list[list[PlannedItem]] = []
    current: list[PlannedItem] = []
    current_cost = 0.0
    while queue:
        block, cost = queue.popleft()
        if current and current_cost + cost > UNIT_SHARE * left / n_workers:
            units.append(current)
            left -= current_cost
            current, current_cost = [], 0.0
        target = UNIT_SHARE * left / n_workers
        worth_it = timed and cost > 2 * target and cost >= min_gain
        if cuttable and worth_it and _cheap_to_cut(block, costs, target):
            # Toward the end, a block much larger than a unit is cut, so that the last units
            # are small and no worker waits long for another's last one (only from recorded
            # durations: without them, a module's cost is a guess).
            head, rest = _cut(block, costs, target)
            queue.appendleft((rest, _cost(rest, costs)))
            block, cost = head, _cost(head, costs)
        current.extend(block)
        current_cost += cost
    if current:
        units.append(current)
    return [
        Unit(tuple((item.index, item.nodeid) for item in unit), tuple(item.key for item in unit))
        for unit in units
    ]


def _cost(block: Sequence[PlannedItem], costs: Mapping[int, float]) -> float:
    return sum(costs[item.index] for item in block)


def _cheap_to_cut(block: Sequence[PlannedItem], costs: Mapping[int, float], target: float) -> bool:
    """Whether a block can be cut without paying much again: its first test may carry the set-up
    of fixtures its other tests share (a module fixture), which a piece run by another worker
    would pay again. That set-up is estimated as the first test's excess over the longest of
    the others (tests of varied lengths do not look like a set-up then)."""
    if len(block) < 2:
        return False
    setup = costs[block[0].index] - max(costs[item.index] for item in block[1:])
    return setup <= CUT_SETUP_SLACK * target


def _cut(
    block: list[PlannedItem], costs: Mapping[int, float], target: float
) -> tuple[list[PlannedItem], list[PlannedItem]]:
    """The first tests of a block worth about ``target`` (at least one), and the rest."""
    done = 0.0
    for position, item in enumerate(block[:-1], start=1):
        done += costs[item.index]
        if done >= target:
            return block[:position], block[position:]
    return block[:-1], block[-1:]


def _costs(
    items: Sequence[PlannedItem], durations: Mapping[str, float]
) -> tuple[dict[int, float], float]:
    """Each test's cost, and the least gain in those terms worth cutting a module for. Without
    any recorded duration every test costs 1 and only the relative rules apply."""
    known = [durations[item.nodeid] for item in items if item.nodeid in durations]
    if not known:
        return {item.index: 1.0 for item in items}, 0.0
    mean = sum(known) / len(known)
    costs = {item.index: max(0.0, durations.get(item.nodeid, mean)) + OVERHEAD_S for item in items}
    return costs, MIN_CUT_GAIN_S


def _blocks(
    items: Sequence[PlannedItem],
    dist: str,
    costs: Mapping[int, float],
    n_workers: int,
    min_gain: float,
) -> list[list[PlannedItem]]:
    if dist == "load":
        return [[item] for item in items]
    if dist == "loadgroup":
        return _blocks_by(items, lambda item: item.group or f"\0{item.index}")
    if dist == "loadscope":
        return _blocks_by(items, lambda item: item.scope or module_of(item.nodeid))
    modules = _blocks_by(items, lambda item: item.module)
    if dist == "loadfile":
        return modules
    # auto: modules stay whole while that does not hurt the balance.
    return _cut_for_balance(modules, costs, n_workers, min_gain)


def _cut_for_balance(
    blocks: list[list[PlannedItem]], costs: Mapping[int, float], n_workers: int, min_gain: float
) -> list[list[PlannedItem]]:
    """While handing the blocks out longest first would end more than ``BALANCE_SLACK`` after
    the ideal (all the work spread evenly), cut the costliest block in two, in order."""
    blocks = list(blocks)
    block_costs = [_cost(block, costs) for block in blocks]
    ideal = sum(block_costs) / n_workers
    makespan = _makespan(block_costs, n_workers)
    for _ in range(8 * n_workers + 16):
        if makespan <= ideal * (1 + BALANCE_SLACK) or makespan - ideal < min_gain:
            break
        cuttable = [b for b in range(len(blocks)) if len(blocks[b]) > 1]
        if not cuttable:
            break
        largest = max(cuttable, key=lambda b: block_costs[b])
        # Half its cost, allowing for rounding in summed floats.
        first, second = _cut(blocks[largest], costs, block_costs[largest] / 2 * (1 - 1e-9))
        new_costs = [*block_costs]
        new_costs[largest : largest + 1] = [_cost(first, costs), _cost(second, costs)]
        new_makespan = _makespan(new_costs, n_workers)
        if new_makespan >= makespan:
            break  # cutting does not help (a few tests of similar length, say)
        blocks[largest : largest + 1] = [first, second]
        block_costs, makespan = new_costs, new_makespan
    return blocks


def _makespan(block_costs: Sequence[float], n_workers: int) -> float:
    """When the last worker would finish, the blocks handed out longest first to whichever
    worker is free first."""
    loads = [0.0] * n_workers
    for cost in sorted(block_costs, reverse=True):
        heapq.heapreplace(loads, loads[0] + cost)
    return max(loads)


def _blocks_by(
    items: Sequence[PlannedItem], key: Callable[[PlannedItem], str]
) -> list[list[PlannedItem]]:
    blocks: dict[str, list[PlannedItem]] = {}
    for item in items:
        blocks.setdefault(key(item), []).append(item)
    return list(blocks.values())
