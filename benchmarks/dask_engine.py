"""The engine's dask backend beside joblib's own, on the same LocalCluster, alternating.

Two measurements, medians of ``--rounds`` (each round runs joblib then us, or us then joblib):

- joblib's seed example: ten ``sleep(1)`` with ``n_jobs=3`` on 3 single-threaded workers,
  whose floor is 4.0 s (four waves);
- the per-task overhead: 2,000 calls of a trivial function, ``n_jobs=-1``, wall time / 2,000.

Needs ``joblib`` and ``distributed`` (``pip install -e .[bench,dask]``). Usage::

    python benchmarks/dask_engine.py [--rounds 5] [--workers 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def trivial(value: int) -> int:
    return value + 1


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=3)
    options = parser.parse_args()
    import joblib
    from distributed import Client, LocalCluster

    import pytest_parproc

    cluster = LocalCluster(
        n_workers=options.workers,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        processes=True,
    )
    client = Client(cluster)
    # joblib knows "dask" only through parallel_config (it registers the backend there).
    engines: dict[str, Any] = {"joblib 1.6": joblib, "pytest-parproc": pytest_parproc}

    def seed(name: str) -> float:
        engine = engines[name]
        with engine.parallel_config("dask"):
            return _timed(
                lambda: engine.Parallel(n_jobs=3)(engine.delayed(nap)(1.0) for _ in range(10))
            )

    def overhead(name: str) -> float:
        engine, calls = engines[name], 2000
        call = (engine.delayed(trivial)(i) for i in range(calls))
        with engine.parallel_config("dask"):
            return _timed(lambda: engine.Parallel(n_jobs=-1)(call)) / calls

    results: dict[tuple[str, str], list[float]] = {}
    for name in engines:  # warm-up: imports on the workers
        overhead(name)
    for round_ in range(options.rounds):
        order = list(engines) if round_ % 2 == 0 else list(reversed(engines))
        for name in order:
            results.setdefault(("seed", name), []).append(seed(name))
            results.setdefault(("overhead", name), []).append(overhead(name))
    client.close()
    cluster.close()
    print(f"{options.workers} single-threaded LocalCluster workers, medians of {options.rounds}")
    print("| measurement | joblib 1.6 | pytest-parproc | parproc / joblib |")
    print("|---|---|---|---|")
    for measurement, unit, scale in (("seed", "s", 1.0), ("overhead", "ms a call", 1e3)):
        ours = statistics.median(results[(measurement, "pytest-parproc")]) * scale
        theirs = statistics.median(results[(measurement, "joblib 1.6")]) * scale
        label = "ten sleep(1), n_jobs=3" if measurement == "seed" else "2,000 trivial calls"
        print(f"| {label} | {theirs:.3f} {unit} | {ours:.3f} {unit} | {ours / theirs:.2f} |")


if __name__ == "__main__":
    main()
