"""Where the time went: each worker's tests, busy, idle and start-up seconds, and the table and
notes the terminal summary shows."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_parproc.plugin.messages import ItemRecord, TaskResult
from pytest_parproc.plugin.timing import RunTiming

STARTED_AT = 1000.0  # the run's start, time.time() scale
COLUMNS = ("worker", "pid", "tests", "busy", "idle", "startup", "utilization")


def result(worker_id: str, tests: int, busy_s: float, pid: int = 7, **fields: Any) -> TaskResult:
    records = [ItemRecord(index) for index in range(tests)]
    return TaskResult(worker_id, pid, records, busy_s=busy_s, **fields)


def ready(worker_id: str, ready_at: float, **fields: Any) -> TaskResult:
    """The first result of a worker: its session was built in this task."""
    return result(worker_id, 1, 0.0, ready_at=ready_at, **fields)


def table(lines: list[str]) -> dict[str, dict[str, str]]:
    """The table's rows by worker id, each cell by column (the header and notes left out)."""
    header, *rest = lines
    assert header.split()[0] == "worker" and header.split()[-1] == "utilization"
    rows = [line.split() for line in rest if not line.startswith(("start-up:", "total:"))]
    cells = lines[: len(rows) + 1]
    assert len({len(line) for line in cells}) == 1 and not any(c.endswith(" ") for c in cells)
    return {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in rows}


def notes(lines: list[str], kind: str) -> list[str]:
    return [line.removeprefix(f"{kind}: ") for line in lines if line.startswith(f"{kind}: ")]


def test_task_results_add_up_tests_and_busy_time_per_worker() -> None:
    timing = RunTiming(STARTED_AT)
    timing.add(result("w0", 2, 1.5, pid=11))
    timing.add(result("w0", 1, 0.5, pid=11))
    timing.add(result("w1", 1, 0.25))
    timing.add(result("", 4, 9.0))  # no worker id: not a worker's task
    assert set(timing.workers) == {"w0", "w1"}
    w0, w1 = timing.workers["w0"], timing.workers["w1"]
    assert (w0.tests, w0.busy_s, w0.pid) == (3, 2.0, 11)
    assert (w1.tests, w1.busy_s) == (1, 0.25)


def test_start_up_runs_from_the_later_of_run_and_process_start_to_ready() -> None:
    timing = RunTiming(STARTED_AT)
    timing.add(ready("w0", 1003.0, process_started_at=990.0))  # started before the run
    timing.add(ready("w1", 1012.5, process_started_at=1010.0))  # a replacement, started later
    timing.add(ready("w2", 1001.5))  # its start unknown: the run's
    timing.add(ready("w3", 1001.0, process_started_at=1000.5, startup_s=4.0))  # its own, longer
    timing.add(result("w4", 1, 0.5, startup_s=9.0))  # no session built in this task
    startup = {worker.worker_id: worker.startup_s for worker in timing.workers.values()}
    assert startup == {"w0": 3.0, "w1": 2.5, "w2": 1.5, "w3": 4.0, "w4": 0.0}


def test_whether_a_worker_was_forked_comes_with_its_start_up() -> None:
    timing = RunTiming(STARTED_AT)
    timing.add(ready("w0", 1001.0, inherited=True))
    timing.add(ready("w1", 1001.0, inherited=False))
    timing.add(result("w2", 1, 0.5, inherited=True))  # no session built: says nothing
    assert [w.inherited for w in timing.workers.values()] == [True, False, False]


def test_idle_is_what_start_up_and_busy_time_leave_of_the_wall_never_below_zero() -> None:
    timing = RunTiming(STARTED_AT)
    timing.add(ready("w0", 1002.0))
    timing.add(result("w0", 2, 3.0))
    timing.add(ready("w1", 1003.0))
    timing.add(result("w1", 2, 9.0))  # busy + start-up > wall: clocks differ a little
    timing.wall_s = 10.0
    rows = table(timing.lines(verbosity=0, backend="loky"))
    cells = {worker: tuple(row[column] for column in COLUMNS) for worker, row in rows.items()}
    assert cells["w0"] == ("w0", "7", "3", "3.00", "5.00", "2.00", "30%")
    assert cells["w1"] == ("w1", "7", "3", "9.00", "0.00", "3.00", "90%")


def test_rows_are_in_worker_number_order_with_other_ids_last() -> None:
    timing = RunTiming(STARTED_AT)
    for worker_id in ("w10", "w2", "w0", "w1"):
        timing.add(result(worker_id, 1, 1.0))
    timing.add_test("main", 42, 0.5)
    timing.wall_s = 2.0
    assert list(table(timing.lines(0, "loky"))) == ["w0", "w1", "w2", "w10", "main"]


def test_the_total_line_gives_wall_summed_test_time_and_speed_up() -> None:
    timing = RunTiming(STARTED_AT)
    timing.add(result("w0", 1, 1.0))
    timing.add(result("w1", 1, 1.0))
    timing.wall_s, timing.test_time_s = 4.0, 6.0
    lines = timing.lines(0, "multiprocessing")
    (total,) = notes(lines, "total")
    assert total.startswith("wall 4.00 s, summed test time 6.00 s, speed-up 1.50x")
    assert lines[-1] == f"total: {total}"
    (quiet,) = timing.lines(verbosity=-1, backend="multiprocessing")
    assert quiet == f"parproc: 2 workers (multiprocessing): {total}"


def test_a_run_without_wall_time_divides_by_nothing() -> None:
    timing = RunTiming(STARTED_AT)
    timing.add(result("w0", 1, 1.0))
    timing.test_time_s = 1.0
    lines = timing.lines(0, "loky")
    assert table(lines)["w0"]["utilization"] == "0%"
    assert "speed-up 0.00x" in notes(lines, "total")[0]


@pytest.mark.parametrize(
    ("forked", "blocker", "note"),
    [
        ([True, True], None, "workers forked after collection took over its session"),
        ([False, False], None, "workers collected the tests themselves"),
        (
            [False, False],
            "a thread was running",
            "workers collected the tests themselves (a thread was running)",
        ),
    ],
)
def test_the_start_up_note_says_whether_the_workers_were_forked(
    forked: list[bool], blocker: str | None, note: str
) -> None:
    timing = RunTiming(STARTED_AT)
    for number, inherited in enumerate(forked):
        timing.add(ready(f"w{number}", 1001.0, inherited=inherited))
    timing.fork_blocker = blocker
    timing.wall_s = 2.0
    assert timing.start_note() == note
    assert notes(timing.lines(0, "loky"), "start-up") == [note]


def test_the_start_up_note_counts_the_forked_workers_when_only_some_were() -> None:
    timing = RunTiming(STARTED_AT)
    for number, inherited in enumerate([True, False, False]):
        timing.add(ready(f"w{number}", 1001.0, inherited=inherited))
    timing.fork_blocker = "started later"
    note = timing.start_note()
    assert note.startswith("1 of 3 workers forked after collection took over its session")
    assert note.endswith("(started later)")


def test_the_threading_backend_has_no_start_up_note_and_no_speed_up() -> None:
    timing = RunTiming(STARTED_AT)
    timing.add_test("w0", 42, 0.25)
    timing.add_test("w0", 42, 0.25)
    timing.add_test("main", 42, 1.0)
    timing.wall_s, timing.test_time_s = 2.0, 1.5
    lines = timing.lines(0, "threading")
    assert notes(lines, "start-up") == []
    (total,) = notes(lines, "total")
    assert total.startswith("wall 2.00 s, summed test time 1.50 s")
    assert "no speed-up can be read" in total and "speed-up 0.75x" not in total
    rows = table(lines)
    assert (rows["w0"]["tests"], rows["w0"]["busy"], rows["w0"]["startup"]) == ("2", "0.50", "0.00")
    assert (rows["main"]["pid"], rows["main"]["idle"], rows["main"]["utilization"]) == (
        "42",
        "1.00",
        "50%",
    )
    (quiet,) = timing.lines(-1, "threading")
    assert quiet.startswith("parproc: 2 workers (threading): ") and "no speed-up" in quiet
