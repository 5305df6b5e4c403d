"""The run directory shared by the main process and its workers: worker ids, the stop flag,
the end-of-round barrier and each worker's progress log (read back after a crash). On dask,
where workers may be on other machines, ``dask_rundir`` keeps the same files apart."""

from __future__ import annotations

import mmap
import os
import pickle
import shutil
import signal
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...parallel import WorkerCrashedError

_LENGTH = 4


class RunDirectory:
    """Files under one directory that every process of a run can see.

    - ``w<k>``: claimed with ``O_EXCL`` by the worker that takes id ``w<k>``; holds its pid.
    - ``stop``: exists once no new test may start (``-x``, ``--maxfail``, a stop request).
    - ``round-<n>/<pid>``: one per worker that reached the end of round ``n``.
    - ``<id>.log``: a worker's progress, one record per event, appended as it happens.
    - ``<id>.faulthandler``: where a worker's faulthandler writes a fatal signal's traceback.
    - ``<id>.now``: the test a worker runs now, for the live progress (``RunningSlot``).
    - ``shared.pickle``: the shared fixtures' values (``plugin/shared``), pickled once.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stop = os.path.join(path, "stop")  # looked at before every test: kept as a str

    # -- worker ids ---------------------------------------------------------------------
    def claim_worker_id(self) -> str:
        """The lowest free id ``w0``, ``w1``, ...: replacement workers get new ids."""
        for number in range(100_000):
            name = f"w{number}"
            try:
                fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as file:
                file.write(str(os.getpid()))
            return name
        raise RuntimeError(f"no free worker id left in {self.path}")

    def worker_ids_by_pid(self) -> dict[int, str]:
        found = {}
        for entry in self.path.glob("w*"):
            if entry.name[1:].isdigit():
                try:
                    found[int(entry.read_text() or "0")] = entry.name
                except (OSError, ValueError):
                    continue
        return found

    # -- stopping -----------------------------------------------------------------------
    @property
    def stop_file(self) -> Path:
        return self.path / "stop"

    def request_stop(self) -> None:
        self.stop_file.touch()

    def stop_requested(self) -> bool:
        return os.path.exists(self._stop)

    # -- failures of every worker, for --maxfail ---------------------------------------------
    def count_failure(self) -> None:
        fd = os.open(self.path / "failures", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, b"F")
        finally:
            os.close(fd)

    def failure_count(self) -> int:
        try:
            return (self.path / "failures").stat().st_size
        except FileNotFoundError:
            return 0

    # -- the end of a round ---------------------------------------------------------------
    def arrive(self, round_id: str) -> None:
        folder = self.path / f"round-{round_id}"
        folder.mkdir(exist_ok=True)
        (folder / str(os.getpid())).touch()

    def wait_for_all(self, round_id: str, count: int, timeout_s: float | None = None) -> bool:
        """Wait until ``count`` workers have arrived; a worker that waits takes no other task,
        so each worker of the pool gets exactly one end-of-round task. No timeout by default:
        a worker that waits long is one whose peers still run tests."""
        folder = self.path / f"round-{round_id}"
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while len(os.listdir(folder)) < count:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    # -- progress logs ------------------------------------------------------------------
    def log_path(self, worker_id: str) -> Path:
        return self.path / f"{worker_id}.log"

    def fault_path(self, worker_id: str) -> Path:
        return self.path / f"{worker_id}.faulthandler"

    def running_path(self, worker_id: str) -> Path:
        return self.path / f"{worker_id}.now"

    def workers_now(self) -> tuple[dict[str, tuple[int, float]], int, int]:
        """What each worker runs now (worker id -> (the test's index, when it started)), and
        how many tests the workers have ended and seen fail (``read_running``)."""
        return read_running(self.path)

    # -- shared fixtures' values, for workers that are not forks of the main process ------
    def publish_shared(self, data: bytes) -> None:
        (self.path / "shared.pickle").write_bytes(data)

    def shared_values(self) -> bytes | None:
        try:
            return (self.path / "shared.pickle").read_bytes()
        except FileNotFoundError:
            return None

    # -- the main process's side ----------------------------------------------------------
    def crashed_worker_id(self, error: WorkerCrashedError) -> str:
        """The id of the dead worker ``error`` tells of ("" where it died before it took one)."""
        return self.worker_ids_by_pid().get(error.pid or -1, "")

    def read(self, worker_id: str, name: str) -> bytes:
        """A file a worker wrote (its log, its faulthandler file); empty where there is none."""
        try:
            return (self.path / name).read_bytes()
        except OSError:
            return b""

    def read_log(self, worker_id: str) -> Iterator[tuple[Any, ...]]:
        return parse_progress_log(self.read(worker_id, self.log_path(worker_id).name))

    def read_fault(self, worker_id: str) -> str:
        data = self.read(worker_id, self.fault_path(worker_id).name)
        return data.decode(errors="replace").strip()

    def interrupt_workers(self) -> None:
        """Ctrl-C reaches the tests running now: SIGINT to each worker this process started (a
        worker takes it for KeyboardInterrupt only while a test runs: ``interrupts``)."""
        for pid in self.worker_ids_by_pid():
            if is_child(pid):
                try:
                    os.kill(pid, signal.SIGINT)
                except OSError:
                    pass  # gone meanwhile

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def is_child(pid: int) -> bool:
    """Whether ``pid`` is a process this one started, directly or not (a dask worker is the
    child of a fork server this process started), not a recycled id."""
    import psutil

    try:
        return any(parent.pid == os.getpid() for parent in psutil.Process(pid).parents())
    except psutil.Error:
        return False


def read_running(folder: str | os.PathLike[str]) -> tuple[dict[str, tuple[int, float]], int, int]:
    """What the ``RunningSlot`` files in ``folder`` say: the test each worker runs now (worker
    id -> (index, when it started)), and how many tests they have ended, and failed."""
    running: dict[str, tuple[int, float]] = {}
    done = failed = 0
    try:
        names = [name for name in os.listdir(folder) if name.endswith(".now")]
    except OSError:
        return running, done, failed
    for name in names:
        try:
            with open(os.path.join(folder, name), "rb") as file:
                data = file.read(RunningSlot.SIZE)
        except OSError:
            continue
        if len(data) == RunningSlot.SIZE:
            index, started, ended, failures = struct.unpack(RunningSlot.FORMAT, data)
            done += ended
            failed += failures
            if index >= 0 and started > 0:  # (a slot read while written: index and time apart)
                running[name[: -len(".now")]] = (index, started)
    return running, done, failed


class RunningSlot:
    """What a worker runs now, for the main process's live progress: the test's index (-1
    between tests), when it started (``time.time()``), and how many tests the worker has
    ended and seen fail, in a memory-mapped file of 32 bytes (a copy into shared memory per
    test, no system call). The reader may see a test that has just ended: it knows which
    tests ended."""

    FORMAT = "<qdqq"
    SIZE = struct.calcsize(FORMAT)

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, self.SIZE)
            self._map = mmap.mmap(fd, self.SIZE)
        finally:
            os.close(fd)
        self._ended = self._failed = 0
        self._write(-1, 0.0)

    def started(self, index: int) -> None:
        self._write(index, time.time())

    def ended(self, failed: bool) -> None:
        self._ended += 1
        self._failed += failed
        self._write(-1, 0.0)

    def _write(self, index: int, started: float) -> None:
        data = struct.pack(self.FORMAT, index, started, self._ended, self._failed)
        self._map[: self.SIZE] = data


class ProgressLog:
    """Append-only records of what a worker is doing, written before and after each step, so
    that the reports of a worker that dies are not lost with it and the test it was running
    can be named.

    The file is memory-mapped: a record costs a copy into shared memory, not a system call,
    and what was copied stays in the file even when the worker is killed the next moment (the
    pages belong to the kernel's cache, not to the process). The unused end of the mapping is
    zeros, which the reader takes for the end; ``close`` cuts it off."""

    CHUNK = 1 << 20

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._position = os.fstat(self._fd).st_size  # a later session of the worker appends
        self._size = 0
        self._map: mmap.mmap | None = None
        self._grow(0)

    def _grow(self, needed: int) -> None:
        size = max(self.CHUNK, 2 * self._size, self._position + needed + self.CHUNK)
        os.ftruncate(self._fd, size)
        if self._map is not None:
            self._map.close()
        self._map = mmap.mmap(self._fd, size)
        self._size = size

    def write(self, *record: Any) -> None:
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        end = self._position + _LENGTH + len(data)
        if end > self._size:
            self._grow(_LENGTH + len(data))
        assert self._map is not None
        self._map[self._position + _LENGTH : end] = data
        # The length last: a record is complete once its length is there.
        self._map[self._position : self._position + _LENGTH] = len(data).to_bytes(_LENGTH, "little")
        self._position = end

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        os.ftruncate(self._fd, self._position)
        os.close(self._fd)


def read_progress_log(path: Path) -> Iterator[tuple[Any, ...]]:
    """The records of a log file (none where it does not exist)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return iter(())
    return parse_progress_log(data)


def parse_progress_log(data: bytes) -> Iterator[tuple[Any, ...]]:
    """The records of a log; a record cut short by the worker's death is dropped."""
    position = 0
    while position + _LENGTH <= len(data):
        size = int.from_bytes(data[position : position + _LENGTH], "little")
        if size == 0:
            return  # the unused, zeroed end of a mapped log
        start = position + _LENGTH
        if start + size > len(data):
            return
        try:
            record = pickle.loads(data[start : start + size])
        except Exception:
            return
        yield tuple(record)
        position = start + size
