"""Planning units: blocks as --par-dist says, longest first by recorded duration, units that
shrink toward the end of the plan."""

from __future__ import annotations

from pytest_parproc.plugin.messages import Unit
from pytest_parproc.plugin.processes.scheduling import PlannedItem, module_of, plan_units, scope_of


def items(*sizes: int) -> list[PlannedItem]:
    planned = []
    for module, size in enumerate(sizes):
        for case in range(size):
            nodeid = f"test_m{module}.py::test_{case}"
            planned.append(PlannedItem(len(planned), nodeid, module_of(nodeid)))
    return planned


def test_group_of() -> None:
    assert module_of("pkg/test_a.py::TestX::test_y[1-2]") == "pkg/test_a.py"
    assert module_of("doc.txt") == "doc.txt"


def test_every_item_once_in_collection_order_within_a_unit() -> None:
    planned = items(3, 7, 1, 4)
    units = plan_units(planned, 2)
    indices = [index for unit in units for index, _ in unit.items]
    assert sorted(indices) == list(range(len(planned)))
    for unit in units:
        positions = [index for index, _ in unit.items]
        assert positions == sorted(positions)


def test_small_modules_stay_whole_largest_first() -> None:
    units = plan_units(items(2, 5, 3), 2)  # share is 5: the largest module goes whole, first
    assert [nodeid for _, nodeid in units[0].items] == [f"test_m1.py::test_{n}" for n in range(5)]


def timed(planned: list[PlannedItem], seconds: float = 0.1) -> dict[str, float]:
    return {item.nodeid: seconds for item in planned}


def test_a_module_larger_than_a_share_is_split() -> None:
    planned = items(20, 2)
    units = plan_units(planned, 2, durations=timed(planned))  # whole: 20 of 22 on one worker
    assert len(units[0].items) <= 11
    assert sum(1 for unit in units if "test_m0.py" in modules_of(unit)) >= 2


def test_modules_are_cut_only_as_far_as_the_balance_needs() -> None:
    # Three equal modules on two workers: whole, one worker runs two of them (20 tests against
    # the ideal 15). Two stay whole; the third is cut, in order, into smaller and smaller units.
    planned = items(10, 10, 10)
    units = plan_units(planned, 2, durations=timed(planned))
    assert sizes(units)[:2] == [10, 10]
    assert all(len(unit.items) <= 5 for unit in units[2:])
    assert len({module for unit in units[2:] for module in modules_of(unit)}) == 1
    # Eight equal modules on two workers balance whole: only the last is cut, so that the last
    # units are small.
    planned = items(*[6] * 8)
    counts = sizes(plan_units(planned, 2, durations=timed(planned)))
    assert all(count % 6 == 0 for count in counts[:5]) and counts[-1] < 6


def test_quick_modules_are_never_cut() -> None:
    # Cutting would gain less than MIN_CUT_GAIN_S: modules stay whole, whatever the balance.
    planned = items(10, 10, 10)
    assert sizes(plan_units(planned, 2, durations=timed(planned, 0.001))) == [10, 10, 10]
    assert sizes(plan_units(items(2, 2, 1), 2)) == [2, 2, 1]


def test_a_module_whose_first_test_sets_up_for_the_others_is_not_cut() -> None:
    planned = items(*[11] * 4)
    durations = {item.nodeid: 0.001 for item in planned}
    durations.update({f"test_m{m}.py::test_0": 0.3 for m in range(4)})  # a module fixture
    units = plan_units(planned, 2, durations=durations)
    for unit in units:
        for module in modules_of(unit):
            assert sum(1 for _, nodeid in unit.items if module_of(nodeid) == module) == 11


def test_the_last_units_are_small() -> None:
    planned = items(*[100] * 20)
    units = plan_units(planned, 2, durations=timed(planned, 0.01))
    assert sum(sizes(units)) == 2000
    assert sizes(units)[0] >= 200
    assert all(count <= 10 for count in sizes(units)[-4:])  # 0.1 s or less each


def test_one_worker_and_no_items() -> None:
    assert plan_units([], 4) == []
    assert [len(unit.items) for unit in plan_units(items(3, 3), 1)] == [3, 3]


def sizes(units: list[Unit]) -> list[int]:
    return [len(unit.items) for unit in units]


def modules_of(unit: Unit) -> set[str]:
    return {module_of(nodeid) for _, nodeid in unit.items}


def test_scope_of() -> None:
    assert scope_of("a.py::TestX::test_y[1::2]") == "a.py::TestX"
    assert scope_of("a.py::TestX::TestInner::test_y") == "a.py::TestX::TestInner"
    assert scope_of("a.py::test_y[x]") == "a.py"


def test_recorded_durations_put_the_longest_work_first() -> None:
    planned = items(10, 1)  # the long test's module is collected last, and is smaller
    durations = {f"test_m0.py::test_{case}": 0.001 for case in range(10)}
    durations["test_m1.py::test_0"] = 1.0
    units = plan_units(planned, 2, durations=durations)
    assert [nodeid for _, nodeid in units[0].items] == ["test_m1.py::test_0"]
    # Without durations every test counts the same: the larger module goes first.
    assert modules_of(plan_units(planned, 2)[0]) == {"test_m0.py"}


def test_tests_never_timed_count_at_the_mean_of_the_others() -> None:
    planned = items(4, 4, 1)
    durations = {f"test_m0.py::test_{case}": 0.01 for case in range(4)}
    durations.update({f"test_m1.py::test_{case}": 0.5 for case in range(4)})
    # test_m2's one test is unknown: counted at the mean (0.255), it goes before test_m0.
    units = plan_units(planned, 2, "loadfile", durations)
    assert [modules_of(unit) for unit in units] == [{"test_m1.py"}, {"test_m2.py"}, {"test_m0.py"}]


def test_units_shrink_toward_the_end() -> None:
    planned = [PlannedItem(i, f"test_m.py::test_{i}", "test_m.py") for i in range(1000)]
    units = plan_units(planned, 4, "load")
    counts = sizes(units)
    assert counts == sorted(counts, reverse=True)
    assert counts[0] >= 100 and counts[-1] <= 5
    assert sum(counts) == 1000


def test_load_may_split_a_module_loadfile_never_does() -> None:
    planned = items(12, 2)
    assert any(
        len(modules_of(unit)) == 1 and len(unit.items) < 12
        for unit in plan_units(planned, 2, "load")
    )
    for unit in plan_units(planned, 4, "loadfile"):
        assert sizes([unit])[0] in (12, 2, 14)


def test_loadscope_keeps_each_class_whole() -> None:
    nodeids = [f"test_a.py::TestX::test_{n}" for n in range(6)]
    nodeids += [f"test_a.py::TestY::test_{n}" for n in range(6)]
    nodeids += [f"test_a.py::test_free_{n}" for n in range(2)]
    planned = [
        PlannedItem(i, nodeid, module_of(nodeid), scope=scope_of(nodeid))
        for i, nodeid in enumerate(nodeids)
    ]
    units = plan_units(planned, 8, "loadscope")
    scopes = [{scope_of(nodeid) for _, nodeid in unit.items} for unit in units]
    assert sorted(map(sorted, scopes)) == [
        ["test_a.py"],
        ["test_a.py::TestX"],
        ["test_a.py::TestY"],
    ]


def test_loadgroup_keeps_a_group_together_in_collection_order() -> None:
    planned = [
        PlannedItem(
            i, f"test_{i % 3}.py::test_{i}", f"test_{i % 3}.py", group="g" if i % 2 else None
        )
        for i in range(12)
    ]
    units = plan_units(planned, 4, "loadgroup")
    grouped = [unit for unit in units if any(index % 2 for index, _ in unit.items)]
    assert len(grouped) == 1
    assert [index for index, _ in grouped[0].items] == [1, 3, 5, 7, 9, 11]
    assert sum(sizes(units)) == 12
