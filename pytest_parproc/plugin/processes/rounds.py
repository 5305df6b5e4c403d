"""One round of a process run: a ``Parallel`` call that hands the planned units out as workers
ask for work, then one end-of-round task per worker (each ends its session there)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import Any

from ...parallel import Parallel, WorkerCrashedError, delayed, parallel_config
from ..messages import RunSpec, TaskResult, Unit
from .dask_cluster import DaskCluster
from .worker import end_round, run_unit


class Round:
    """A round's units not handed out yet, and what it heard from each worker."""

    def __init__(self, spec: RunSpec, number: int, units: list[Unit], n_jobs: int) -> None:
        self.spec = spec
        self.number = number
        self.n_jobs = n_jobs
        #: the units not handed out yet
        self.queue: deque[Unit] = deque(units)
        #: workers that sent a result in this round (so have built their session)
        self.heard_from: set[str] = set()
        #: workers that ended their session in this round
        self.ended: set[str] = set()
        #: workers that died in this round
        self.crashed: set[str] = set()
        self._deaths: set[tuple[str, int]] = set()

    def outputs(
        self,
        backend: str,
        isolates: bool,
        stopping: Callable[[], bool],
        cluster: DaskCluster | None = None,
    ) -> Generator[Any, None, None]:
        """The results of the round's tasks as they come (``TaskResult``, or under
        ``crash_policy="isolate"`` a ``WorkerCrashedError`` in a dead task's place). Units are
        handed out until ``stopping()`` says no new test may start."""
        if cluster is not None:
            return self._dask_outputs(cluster, stopping)
        spec, number, queue = self.spec, self.number, self.queue
        with parallel_config(backend=backend, **engine_settings(backend, spec)):
            parallel = Parallel(
                n_jobs=self.n_jobs,
                return_as="generator_unordered",
                batch_size=1,
                crash_policy="isolate" if isolates else "abort",
            )
            n_workers = parallel.n_jobs

            def tasks() -> Iterator[Any]:
                while queue and not stopping():
                    yield delayed(run_unit)(spec, number, queue.popleft())
                for _ in range(n_workers):
                    yield delayed(end_round)(spec, number, n_workers)

            outputs: Generator[Any, None, None] = parallel(tasks())
        return outputs

    def _dask_outputs(
        self, cluster: DaskCluster, stopping: Callable[[], bool]
    ) -> Generator[Any, None, None]:
        """On dask, in two calls: the units, then (once all are done) one end-of-round task
        pinned to each worker. dask hands tasks to workers by its own rules, and a worker could
        otherwise get a unit after its end-of-round task."""
        spec, number, queue = self.spec, self.number, self.queue
        with parallel_config(backend="dask", **cluster.engine_settings()):
            options: dict[str, Any] = {
                "return_as": "generator_unordered",
                "batch_size": 1,
                "crash_policy": "isolate",
            }
            units = Parallel(n_jobs=self.n_jobs, **options)
            # (never 1: that would run the tasks in this process)
            ends = Parallel(n_jobs=max(2, len(cluster.names)), **options)

        def tasks() -> Iterator[Any]:
            while queue and not stopping():
                yield delayed(run_unit)(spec, number, queue.popleft())

        yield from units(tasks())
        pinned = cluster.pinned(end_round)
        yield from ends(delayed(end)(spec, number, len(pinned)) for end in pinned)

    def first_news_of(self, death: WorkerCrashedError) -> bool:
        """Whether this is the first error that tells of this death: on dask, a worker that
        dies holding the result of a finished unit fails that unit too (its progress log,
        recovered at the first error, holds both)."""
        if death.pid is None:
            return True
        key = (death.worker, death.pid)
        known = key in self._deaths
        self._deaths.add(key)
        return not known

    def heard(self, result: TaskResult) -> None:
        self.heard_from.add(result.worker_id)
        if result.finished:
            self.ended.add(result.worker_id)

    def hand_back(self, unit: Unit) -> None:
        """Tests a retiring worker did not run go first to the next free worker."""
        self.queue.appendleft(unit)

    def unfinished(self) -> set[str]:
        """Workers whose session did not end (a crash let another worker take their
        end-of-round task): a later round ends them."""
        return self.heard_from - self.ended - self.crashed


def engine_settings(backend: str, spec: RunSpec) -> dict[str, Any]:
    """The backend's settings for a round of this run."""
    if backend != "loky":
        return {}
    # Fresh workers for each run: a worker that ran another run's tests has their modules
    # imported (its settings differ, so the engine starts a new pool). Idle workers leave soon
    # after the run; during it, there is always a task to take.
    settings: dict[str, Any] = {
        "env": {"PYTEST_PARPROC_RUN_ID": spec.run_id},
        "idle_worker_timeout": 10,
    }
    if spec.fork:
        settings["start_method"] = "fork"  # forks only where safe, else fork+exec
    return settings
