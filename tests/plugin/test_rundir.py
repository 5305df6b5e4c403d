"""The run directory: worker ids, the stop flag, the end-of-round barrier, progress logs."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from pytest_parproc.plugin.processes.rundir import ProgressLog, RunDirectory, read_progress_log


def test_worker_ids_are_claimed_once_each(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path)
    assert [run_dir.claim_worker_id() for _ in range(3)] == ["w0", "w1", "w2"]
    assert run_dir.worker_ids_by_pid() == {os.getpid(): "w2"}  # one pid claimed all three


def test_stop_flag(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path)
    assert not run_dir.stop_requested()
    run_dir.request_stop()
    assert run_dir.stop_requested()


def test_barrier_counts_arrivals(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path)
    run_dir.arrive("0")
    assert run_dir.wait_for_all("0", 1, timeout_s=5)
    assert not run_dir.wait_for_all("0", 2, timeout_s=0.05)


def test_progress_log_round_trip_drops_a_torn_record(tmp_path: Path) -> None:
    path = tmp_path / "w0.log"
    log = ProgressLog(path)
    log.write("start", 3)
    log.write("report", 3, {"when": "setup"})
    log.close()
    with path.open("ab") as file:
        file.write(b"\x40\x00\x00\x00partial")  # a record cut short by the worker's death
    assert list(read_progress_log(path)) == [("start", 3), ("report", 3, {"when": "setup"})]
    assert list(read_progress_log(tmp_path / "missing.log")) == []


def test_running_slots_tell_what_each_worker_runs_now(tmp_path: Path) -> None:
    from pytest_parproc.plugin.processes.rundir import RunningSlot

    run_dir = RunDirectory(tmp_path)
    first = RunningSlot(run_dir.running_path("w0"))
    second = RunningSlot(run_dir.running_path("w1"))
    assert run_dir.workers_now() == ({}, 0, 0)  # between tests
    first.started(7)
    second.started(3)
    second.ended(failed=True)
    second.started(4)
    second.ended(failed=False)
    running, done, failed = run_dir.workers_now()
    assert list(running) == ["w0"] and running["w0"][0] == 7
    assert running["w0"][1] > 0  # when it started (time.time())
    assert (done, failed) == (2, 1)
    (tmp_path / "w2.now").write_bytes(b"\x01")  # cut short: not read
    (tmp_path / "w3.now").write_bytes(struct.pack(RunningSlot.FORMAT, 5, 0.0, 0, 0))  # torn
    assert "w3" not in run_dir.workers_now()[0]
    assert run_dir.workers_now()[1:] == (2, 1)
