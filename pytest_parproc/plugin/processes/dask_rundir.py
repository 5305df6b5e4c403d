"""The run directory of a dask run, whose workers may be on other machines with no file system in
common with the main process.

- Each worker keeps its files (progress log, faulthandler file, the stop flag, the failure count)
  in a folder of its own machine: ``pytest-parproc-<run id>`` in its temporary folder.
- Worker ids are claimed from the scheduler (a dask ``Lock`` and ``Variable``), which also tells
  the main process each worker's host, pid and folder.
- A stop request (``-x``, ``--maxfail``, Ctrl-C) reaches every worker through ``Client.run``.
- After a crash, the main process reads the dead worker's files through a live worker on the
  same host (the dead one's nanny restarts it there, under the same name).
- No end-of-round barrier: on dask each end-of-round task is pinned to its worker.

Every function that runs on a worker is a plain module-level function: ``Client.run`` pickles
it by reference, and the worker has this module already.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...parallel import WorkerCrashedError
from ..messages import RunSpec
from .rundir import RunDirectory, read_running

#: how old the claims the live progress reads may be, at most
CLAIMS_FRESH_S = 2.0
#: how long the main process waits for a dead worker's host to have a live worker again (its
#: nanny restarting it) before it reports the crash without the worker's files
REACH_HOST_S = 10.0


@dataclass(frozen=True)
class Claim:
    """A worker id as claimed on the scheduler: where that worker runs and keeps its files."""

    host: str
    pid: int
    address: str
    folder: str


def _distributed() -> Any:
    import distributed  # (installed wherever a run is on dask)

    return distributed


#: this machine's temporary folder as the worker process found it (before a run's worker takes
#: the main process's environment, whose TMPDIR may not exist here)
_TEMPORARY = tempfile.gettempdir()


def local_folder(run_id: str) -> str:
    return os.path.join(_TEMPORARY, f"pytest-parproc-{run_id}")


def _names(run_id: str) -> tuple[str, str]:
    """The scheduler-side lock and variable of a run's worker ids."""
    return f"pytest-parproc-{run_id}-ids-lock", f"pytest-parproc-{run_id}-ids"


def _shared_name(run_id: str) -> str:
    """The scheduler-side variable of a run's shared fixture values (absent: none)."""
    return f"pytest-parproc-{run_id}-shared"


def for_worker(spec: RunSpec) -> RunDirectory:
    """The run directory a worker process uses: the shared one, or on dask its machine's own."""
    return WorkerRunDirectory(spec.run_id) if spec.dask else RunDirectory(spec.run_dir)


class WorkerRunDirectory(RunDirectory):
    """A dask worker's side: files in a folder of its machine, ids from the scheduler."""

    def __init__(self, run_id: str) -> None:
        folder = local_folder(run_id)
        os.makedirs(folder, exist_ok=True)
        super().__init__(folder)
        self.run_id = run_id

    def claim_worker_id(self) -> str:
        dask = _distributed()
        client = dask.get_client()
        lock_name, variable_name = _names(self.run_id)
        claim = Claim(socket.gethostname(), os.getpid(), dask.get_worker().address, str(self.path))
        with dask.Lock(lock_name):
            variable = dask.Variable(variable_name, client=client)
            claimed = dict(variable.get(timeout=60))
            worker_id = f"w{len(claimed)}"
            # (plain values, which dask sends without pickling)
            claimed[worker_id] = [claim.host, claim.pid, claim.address, claim.folder]
            variable.set(claimed)
        (self.path / worker_id).write_text(str(os.getpid()))
        return worker_id

    def request_stop(self) -> None:
        if self.stop_requested():
            return  # told already (or telling)
        super().request_stop()
        # Every worker of the cluster, this one's machine and the others' (workers of other
        # runs have no such folder and create none).
        _distributed().get_client().run(mark_stop, self.run_id, wait=False)

    def shared_values(self) -> bytes | None:
        dask = _distributed()
        variable = dask.Variable(_shared_name(self.run_id), client=dask.get_client())
        try:
            return bytes(variable.get(timeout=0))
        except Exception:  # (a TimeoutError: nothing was published)
            return None

    def arrive(self, round_id: str) -> None:
        """(No barrier on dask: each worker's end-of-round task is pinned to it.)"""

    def wait_for_all(self, round_id: str, count: int, timeout_s: float | None = None) -> bool:
        return True


async def mark_stop(run_id: str) -> None:
    """On a worker (``Client.run``): no new test of run ``run_id`` starts on this machine. (A
    coroutine: ``Client.run`` need not wait for those alone.)"""
    folder = local_folder(run_id)
    if os.path.isdir(folder):
        Path(folder, "stop").touch()


def read_file(path: str) -> bytes | None:
    """On a worker (``Client.run``): a file of its machine, or None where it has none."""
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def remove_folder(run_id: str) -> None:
    """On a worker (``Client.run``): the run's folder on its machine is removed."""
    shutil.rmtree(local_folder(run_id), ignore_errors=True)


class DaskRunView(RunDirectory):
    """The main process's side: its own folder (which workers never see), and the workers'
    files reached through the cluster's client."""

    def __init__(self, path: str, client: Any, run_id: str) -> None:
        super().__init__(path)
        self.client = client
        self.run_id = run_id
        self._claims = _distributed().Variable(_names(run_id)[1], client=client)
        self._claims.set({})
        self._told = False
        self._shared: Any = None
        #: when the claims were last read for the live progress, and what they were
        self._claims_read: tuple[float, dict[str, Claim]] = (float("-inf"), {})

    def claims(self, timeout_s: float = 30) -> dict[str, Claim]:
        try:
            claimed = dict(self._claims.get(timeout=timeout_s))
        except Exception:  # the scheduler is gone: no worker can be named
            return {}
        return {worker_id: Claim(*fields) for worker_id, fields in claimed.items()}

    def workers_now(self) -> tuple[dict[str, tuple[int, float]], int, int]:
        """What the workers on this machine say (those on others keep it to themselves:
        reading it there would cost a call to each at every look)."""
        here = socket.gethostname()
        running: dict[str, tuple[int, float]] = {}
        done = failed = 0
        # The claims from the scheduler at most every few seconds, and never waited for long:
        # the progress thread asks four times a second.
        if time.monotonic() - self._claims_read[0] > CLAIMS_FRESH_S:
            self._claims_read = (time.monotonic(), self.claims(timeout_s=CLAIMS_FRESH_S))
        for claim in {claim.folder: claim for claim in self._claims_read[1].values()}.values():
            if claim.host == here:
                found, ended, failures = read_running(claim.folder)
                running.update(found)
                done, failed = done + ended, failed + failures
        return running, done, failed

    def request_stop(self) -> None:
        super().request_stop()
        if not self._told:
            self._told = True
            try:
                self.client.run(mark_stop, self.run_id, wait=False)
            except Exception:
                pass  # the cluster is gone: no worker is left to start a test

    def worker_ids_by_pid(self) -> dict[int, str]:
        return {claim.pid: worker_id for worker_id, claim in self.claims().items()}

    def publish_shared(self, data: bytes) -> None:
        self._shared = _distributed().Variable(_shared_name(self.run_id), client=self.client)
        self._shared.set(data)

    def interrupt_workers(self) -> None:
        """(Not SIGINT, which would end a dask worker: see ``interrupts``.)"""
        from .interrupts import interrupt_tests

        try:
            self.client.run(interrupt_tests, self.run_id, wait=False)
        except Exception:
            pass  # the cluster is gone

    def crashed_worker_id(self, error: WorkerCrashedError) -> str:
        """By the dead worker's address and pid (pids of different machines may be equal)."""
        for worker_id, claim in self.claims().items():
            if claim.pid == error.pid and (not error.worker or claim.address == error.worker):
                return worker_id
        return ""

    def read(self, worker_id: str, name: str) -> bytes:
        claim = self.claims().get(worker_id)
        if claim is None:
            return b""
        path = os.path.join(claim.folder, name)
        deadline = time.monotonic() + REACH_HOST_S
        while True:
            found = self._read_on(claim.host, path)
            if found is not None or time.monotonic() > deadline:
                return found or b""
            time.sleep(0.1)  # no live worker on that host yet: its nanny restarts the dead one

    def _read_on(self, host: str, path: str) -> bytes | None:
        """``path`` as a live worker on ``host`` reads it: None where no worker is there."""
        try:
            hosts = self.client.run(socket.gethostname, on_error="ignore")
            there = [address for address, name in hosts.items() if name == host]
            if not there:
                return None
            found = self.client.run(read_file, path, workers=there, on_error="ignore")
        except Exception:  # the scheduler is gone
            return b""
        return next((data for data in found.values() if data is not None), b"")

    def close(self) -> None:
        try:
            self.client.run(remove_folder, self.run_id, on_error="ignore")
            self._claims.delete()
            if self._shared is not None:
                self._shared.delete()
        except Exception:
            pass  # a cluster that went away took its workers' folders with it, or left them
        super().close()


def for_main(spec: RunSpec, cluster: Any) -> RunDirectory:
    """The main process's view of the run directory: its own folder, or a dask run's."""
    if cluster is None or not spec.dask:
        return RunDirectory(spec.run_dir)
    return DaskRunView(spec.run_dir, cluster.client, spec.run_id)
