"""Planning units: modules stay together and in order, large ones are split, largest first."""

from __future__ import annotations

from pytest_parproc.plugin.scheduling import PlannedItem, group_of, plan_units


def items(*sizes: int) -> list[PlannedItem]:
    planned = []
    for module, size in enumerate(sizes):
        for case in range(size):
            nodeid = f"test_m{module}.py::test_{case}"
            planned.append(PlannedItem(len(planned), nodeid, group_of(nodeid)))
    return planned


def test_group_of() -> None:
    assert group_of("pkg/test_a.py::TestX::test_y[1-2]") == "pkg/test_a.py"
    assert group_of("doc.txt") == "doc.txt"


def test_every_item_once_in_collection_order_within_a_unit() -> None:
    planned = items(3, 7, 1, 4)
    units = plan_units(planned, 2)
    indices = [index for unit in units for index, _ in unit.items]
    assert sorted(indices) == list(range(len(planned)))
    for unit in units:
        positions = [index for index, _ in unit.items]
        assert positions == sorted(positions)


def test_small_modules_stay_whole_largest_first() -> None:
    units = plan_units(items(2, 5, 3), 2)  # share is 5: nothing is split
    assert [len(unit.items) for unit in units] == [5, 3, 2]
    assert {group_of(nodeid) for _, nodeid in units[0].items} == {"test_m1.py"}


def test_a_module_larger_than_a_share_is_split() -> None:
    units = plan_units(items(20, 2), 2)  # share 11, chunks of 6
    sizes = sorted((len(unit.items) for unit in units), reverse=True)
    assert sizes == [6, 6, 6, 2, 2]


def test_one_worker_and_no_items() -> None:
    assert plan_units([], 4) == []
    assert [len(unit.items) for unit in plan_units(items(3, 3), 1)] == [3, 3]
