"""A dead worker's progress log: what it finished is replayed, the test it was running is named
with its phase, and a record cut short by its death is dropped."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pytest_parproc.plugin.messages import ItemRecord, WarningRecord
from pytest_parproc.plugin.processes.crashes import recover_log
from pytest_parproc.plugin.processes.rundir import ProgressLog, RunDirectory, read_progress_log


class RecordingReplayer:
    """Stands in for ``Replayer``: keeps a copy of each record as it was replayed."""

    def __init__(self) -> None:
        self.replayed: list[ItemRecord] = []

    def replay(self, record: ItemRecord) -> None:
        self.replayed.append(copy.deepcopy(record))


def report(index: int, when: str, outcome: str = "passed") -> dict[str, Any]:
    return {"nodeid": f"test_m.py::test_{index}", "when": when, "outcome": outcome}


def warning(index: int, message: str) -> WarningRecord:
    return WarningRecord(message, "builtins", "UserWarning", "test_m.py", 3, None, f"t{index}")


def finished(log: ProgressLog, index: int, complete: bool = True) -> None:
    """What the worker's collector writes for a test that ran to its end."""
    log.write("start", index)
    for when in ("setup", "call", "teardown"):
        log.write("report", index, report(index, when))
    log.write("warning", index, warning(index, f"from {index}"))
    log.write("end", index, complete)


def recover(run_dir: RunDirectory, blame: bool = True) -> tuple[Any, RecordingReplayer]:
    replayer = RecordingReplayer()
    return recover_log(run_dir, "w0", replayer, blame), replayer  # type: ignore[arg-type]


def test_finished_tests_are_replayed_with_their_reports_and_warnings(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path)
    log = ProgressLog(run_dir.log_path("w0"))
    finished(log, 4)
    finished(log, 7, complete=False)  # pytest.exit cut its protocol short
    log.close()
    running, replayer = recover(run_dir)
    assert running is None
    phases = ("setup", "call", "teardown")
    assert replayer.replayed == [
        ItemRecord(4, [report(4, when) for when in phases], [warning(4, "from 4")], True),
        ItemRecord(7, [report(7, when) for when in phases], [warning(7, "from 7")], False),
    ]


@pytest.mark.parametrize(
    ("reports", "phase"),
    [
        ([], "setup"),
        ([report(1, "setup")], "call"),
        ([report(1, "setup", "failed")], "teardown"),
        ([report(1, "setup", "skipped")], "teardown"),
        ([report(1, "setup"), report(1, "call", "failed")], "teardown"),
        ([report(1, "setup"), report(1, "call")], "teardown"),
    ],
)
def test_with_blame_the_unfinished_test_is_replayed_as_far_as_it_got_and_named(
    tmp_path: Path, reports: list[dict[str, Any]], phase: str
) -> None:
    run_dir = RunDirectory(tmp_path)
    log = ProgressLog(run_dir.log_path("w0"))
    finished(log, 0)
    log.write("start", 1)
    for data in reports:
        log.write("report", 1, data)
    log.write("warning", 1, warning(1, "before the crash"))
    log.close()
    running, replayer = recover(run_dir, blame=True)
    assert running == (1, phase)
    assert [record.index for record in replayer.replayed] == [0, 1]
    assert replayer.replayed[1] == ItemRecord(1, reports, [warning(1, "before the crash")], False)


def test_without_blame_the_unfinished_test_is_left_to_run_again(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path)
    log = ProgressLog(run_dir.log_path("w0"))
    finished(log, 0)
    log.write("start", 1)
    log.write("report", 1, report(1, "setup"))
    log.close()
    running, replayer = recover(run_dir, blame=False)
    assert running is None
    assert [record.index for record in replayer.replayed] == [0]


def write_then_cut_the_last_record(path: Path) -> tuple[int, int]:
    """Test 0 finished, test 1 started and passed its set-up; returns where the last record
    (test 1's set-up report) begins and ends in the file."""
    log = ProgressLog(path)
    finished(log, 0)
    log.write("start", 1)
    log.close()
    begin = path.stat().st_size
    log = ProgressLog(path)  # appends, as a later session of the same worker would
    log.write("report", 1, report(1, "setup"))
    log.close()
    return begin, path.stat().st_size


def test_a_last_record_cut_short_anywhere_is_dropped(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path)
    path = run_dir.log_path("w0")
    begin, end = write_then_cut_the_last_record(path)
    whole = path.read_bytes()
    assert end - begin > 8
    assert recover(run_dir)[0] == (1, "call")  # the whole record: test 1 passed its set-up
    for cut in range(begin, end):  # in its length, in its pickle, one byte short of its end
        path.write_bytes(whole[:cut])
        running, replayer = recover(run_dir)
        assert running == (1, "setup"), cut
        assert [(r.index, len(r.reports)) for r in replayer.replayed] == [(0, 3), (1, 0)]


def test_a_killed_workers_log_with_its_mapped_zeroed_tail_is_read_up_to_its_end(
    tmp_path: Path,
) -> None:
    run_dir = RunDirectory(tmp_path)
    path = run_dir.log_path("w0")
    log = ProgressLog(path)
    try:
        finished(log, 0)
        log.write("start", 1)
        log.write("report", 1, report(1, "setup"))
        # never closed: the worker was killed; the mapping's unused end is still in the file
        assert path.stat().st_size >= ProgressLog.CHUNK
        assert path.read_bytes().endswith(bytes(64))
        running, replayer = recover(run_dir)
        assert running == (1, "call")
        assert [(r.index, len(r.reports)) for r in replayer.replayed] == [(0, 3), (1, 1)]
    finally:
        log.close()


def test_a_log_grows_past_its_first_mapping(tmp_path: Path) -> None:
    path = tmp_path / "w0.log"
    log = ProgressLog(path)
    big = "x" * (ProgressLog.CHUNK // 3)
    try:
        for index in range(5):
            log.write("report", index, {"longrepr": big, "when": "call"})
        records = list(read_progress_log(path))
    finally:
        log.close()
    assert [(kind, index, len(data["longrepr"])) for kind, index, data in records] == [
        ("report", index, len(big)) for index in range(5)
    ]
    assert list(read_progress_log(path)) == records


def test_a_missing_log_yields_nothing(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path)
    assert list(read_progress_log(run_dir.log_path("w0"))) == []
    for blame in (True, False):
        running, replayer = recover(run_dir, blame)
        assert running is None and replayer.replayed == []


def test_records_of_a_test_never_started_are_ignored(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path)
    log = ProgressLog(run_dir.log_path("w0"))
    log.write("report", 5, report(5, "setup"))  # its start was before this log (or lost)
    log.write("warning", 6, warning(6, "stray"))
    log.write("start", 0)
    log.write("report", 0, report(0, "setup"))
    log.write("report", 9, report(9, "call"))
    log.write("end", 0, True)
    log.write("end", 9, True)
    log.close()
    running, replayer = recover(run_dir)
    assert running is None
    assert replayer.replayed == [ItemRecord(0, [report(0, "setup")], [], True)]
