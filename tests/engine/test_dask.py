"""The dask backend beyond the shared contract: finding the cluster, scatter, waiting for
workers, dead workers, and the optional extra. Real schedulers and workers throughout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import engine_tasks as tasks
import pytest
from dask_cluster import dask_cluster

from pytest_parproc import Parallel, WorkerCrashedError, delayed, parallel_config

distributed = pytest.importorskip("distributed")


def record_and_die(path: str, value: int, when: int) -> int:
    if value == when:
        with open(path, "a") as file:
            file.write(f"{os.getpid()}\n")
        os._exit(3)
    time.sleep(0.05)
    return value


def allocate(megabytes: int) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    time.sleep(30)
    return len(block)


def runs_once(path: str, value: int) -> int:
    with open(path, "a") as file:
        file.write(f"{value}\n")
    return value


def _runs(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_the_current_client_is_used(dask_client: Any) -> None:
    parallel = Parallel(backend="dask")
    assert parallel.backend.client is dask_client
    assert parallel.n_jobs == 2, "n_jobs=-1 (dask's default) counts the cluster's threads"
    pids = parallel(delayed(tasks.worker_identity)(i) for i in range(20))
    assert os.getpid() not in {pid for pid, _ in pids}


def test_a_scheduler_address_from_the_config_or_the_environment(
    dask_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = dask_client.scheduler.address
    with parallel_config("dask", scheduler_address=address):
        parallel = Parallel(n_jobs=2)
        assert parallel.backend.client is not dask_client
        assert parallel.backend.client.scheduler.address == address
        assert parallel(delayed(tasks.square)(i) for i in range(5)) == [0, 1, 4, 9, 16]
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    assert Parallel(n_jobs=2, backend="dask").backend.client.scheduler.address == address


def test_an_unreachable_scheduler_is_named() -> None:
    with pytest.raises(ConnectionError, match=r"tcp://127\.0\.0\.1:9' \(from scheduler_address\)"):
        parallel_config("dask", scheduler_address="tcp://127.0.0.1:9", connect_timeout=2)


def test_scattered_arguments_travel_once(dask_client: Any) -> None:
    # dask broadcasts to the workers there at the time: both (an earlier test of the module may
    # have had one restarted by its nanny; on a loaded machine it takes a moment to come back)
    dask_client.wait_for_workers(2, timeout=60)
    workers = set(dask_client.scheduler_info()["workers"])
    big = list(range(200_000))
    with parallel_config("dask", scatter=[big]):
        parallel = Parallel(n_jobs=2)
        backend = parallel.backend
        assert parallel(delayed(len)(big) for _ in range(6)) == [200_000] * 6
    (future,) = backend._futures_by_id.values()  # one future for the six tasks
    holders = dask_client.who_has([future])[future.key]
    assert holders, "scattered"
    if set(dask_client.scheduler_info()["workers"]) == workers:
        # (a worker its nanny restarted meanwhile, on a loaded machine, lost its copy: CI)
        assert len(holders) == 2, "broadcast to both workers"


def test_bad_parameters_are_named(dask_client: Any) -> None:
    with pytest.raises(TypeError, match="scatter must be a list or a tuple"):
        parallel_config("dask", scatter=5)
    with pytest.raises(TypeError, match="unexpected parameters: colour"):
        parallel_config("dask", colour="red")
    with pytest.raises(ValueError, match="wait_for_workers_timeout"):
        parallel_config("dask", wait_for_workers_timeout=-1)


def test_no_worker_after_the_wait_is_a_clear_timeout() -> None:
    with (
        dask_cluster(workers=0) as address,
        pytest.raises(TimeoutError, match=r"no worker .* after 1 s"),
        parallel_config("dask", scheduler_address=address, wait_for_workers_timeout=1),
    ):
        Parallel(n_jobs=-1)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["abort", "isolate"])
def test_a_worker_that_dies_in_a_task_is_named_and_its_task_not_run_again(
    dask_client: Any, tmp_path: Path, policy: str
) -> None:
    record = tmp_path / "runs"
    calls = [delayed(record_and_die)(str(record), i, 3) for i in range(8)]
    if policy == "isolate":
        results = Parallel(n_jobs=2, backend="dask", crash_policy="isolate")(calls)
        error = results[3]
        assert [r for i, r in enumerate(results) if i != 3] == [0, 1, 2, 4, 5, 6, 7]
    else:
        with pytest.raises(WorkerCrashedError) as raised:
            Parallel(n_jobs=2, backend="dask")(calls)
        error = raised.value
    assert isinstance(error, WorkerCrashedError)
    assert error.worker.startswith("tcp://127.0.0.1:")
    assert "left the dask cluster unexpectedly" in str(error)
    # (from the nanny's log: dask keeps a dead worker's exit code nowhere else)
    assert error.exitcode == 3 and "exited unexpectedly with exit code 3" in str(error)
    assert "task 3 (record_and_die)" in str(error)
    # dask runs a task whose worker died again elsewhere: that second run is stopped, and said.
    runs = _runs(record)
    assert len(runs) == 1 or (len(runs) == 2 and "started the batch again" in str(error)), runs
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarted it
    assert Parallel(n_jobs=2, backend="dask")(delayed(tasks.square)(i) for i in range(4)) == [
        0,
        1,
        4,
        9,
    ]


@pytest.mark.slow
def test_the_nannys_memory_limit_is_a_crash() -> None:
    with (
        dask_cluster(workers=1, extra_worker_args=("--memory-limit", "300MB")) as address,
        distributed.Client(address, set_as_default=False) as client,
        parallel_config("dask", client=client),
    ):
        (error,) = Parallel(n_jobs=2, crash_policy="isolate")([delayed(allocate)(600)])
        client.wait_for_workers(1, timeout=60)  # the nanny's restart done before the cluster stops
    assert isinstance(error, WorkerCrashedError)
    assert "task 0 (allocate)" in str(error)


@pytest.mark.slow
def test_run_once_refuses_the_second_run_and_restarts_no_worker(
    dask_client: Any, tmp_path: Path
) -> None:
    """The test cluster runs a dead worker's task again elsewhere (allowed-failures 3): with
    ``run_once`` the worker it goes to runs none of it, and keeps running (same process)."""
    record = tmp_path / "runs"
    dask_client.wait_for_workers(2, timeout=60)
    before = set(dask_client.run(os.getpid).values())
    calls = [delayed(record_and_die)(str(record), i, 3) for i in range(8)]
    with parallel_config("dask", client=dask_client, run_once=True):
        results = Parallel(n_jobs=2, crash_policy="isolate", batch_size=1)(calls)
    assert isinstance(results[3], WorkerCrashedError)
    for index, result in enumerate(results):
        if index != 3 and result != index:  # a result the dead worker held, not fetched yet
            assert isinstance(result, WorkerCrashedError), result
            assert "holding the batch's result" in str(result)
    assert len(_runs(record)) == 1
    dask_client.wait_for_workers(2, timeout=60)
    after = set(dask_client.run(os.getpid).values())
    assert len(before & after) == 1, (before, after)  # the dead one replaced, the other kept


def exit_now() -> None:
    os._exit(3)


@pytest.mark.slow
def test_a_task_pinned_to_a_worker_that_dies_fails_rather_than_waits(dask_client: Any) -> None:
    """On a cluster that runs a dead worker's tasks again, a task pinned to that worker would
    wait for it for ever: it fails with WorkerCrashedError."""
    from pytest_parproc.parallel.backends.dask_tasks import Pinned

    dask_client.wait_for_workers(2, timeout=60)
    address = sorted(dask_client.scheduler_info(n_workers=-1)["workers"])[0]
    with parallel_config("dask", client=dask_client):
        (error,) = Parallel(n_jobs=2, crash_policy="isolate")(
            [delayed(Pinned(address, exit_now))()]
        )
    assert isinstance(error, WorkerCrashedError)
    assert "pinned there" in str(error) and error.worker == address
    dask_client.wait_for_workers(2, timeout=60)


def sleep_and_return(value: int) -> int:
    time.sleep(1.5)
    return value


@pytest.mark.slow
def test_a_task_pinned_to_a_worker_by_name_runs_there() -> None:
    """Pinned to a name (a LocalCluster's are ints), not an address: the check that its worker
    is still there, every half second, knows it by its name too."""
    from pytest_parproc.parallel.backends.dask_tasks import Pinned

    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
        parallel_config("dask", client=client),
    ):
        (name,) = cluster.workers
        calls = [delayed(Pinned(name, sleep_and_return))(7)]
        assert Parallel(n_jobs=2, crash_policy="isolate")(calls) == [7]


def test_each_batch_runs_once_on_a_healthy_cluster(dask_client: Any, tmp_path: Path) -> None:
    record = tmp_path / "runs"
    assert Parallel(n_jobs=2, backend="dask", batch_size=1)(
        delayed(runs_once)(str(record), i) for i in range(30)
    ) == list(range(30))
    assert sorted(map(int, _runs(record))) == list(range(30))


def test_without_distributed_the_extra_is_named() -> None:
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "import pytest_parproc\n"
        "from pytest_parproc import Parallel, delayed\n"
        "squares = Parallel(n_jobs=2, backend='loky')(delayed(abs)(-i) for i in range(3))\n"
        "assert squares == [0, 1, 2]\n"
        "try:\n"
        "    Parallel(n_jobs=2, backend='dask')\n"
        "except ImportError as error:\n"
        "    print('ERROR', error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install 'pytest-parproc[dask]'" in done.stdout
