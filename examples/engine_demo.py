"""The engine on its own: the seed's example, then the same call on every backend."""

from __future__ import annotations

import time

from pytest_parproc import Parallel, delayed


def slow_square(value: int) -> int:
    time.sleep(0.25)
    return value * value


def main() -> None:
    for backend in ("loky", "multiprocessing", "threading", "sequential"):
        start_s = time.perf_counter()
        results = Parallel(n_jobs=4, backend=backend)(delayed(slow_square)(i) for i in range(8))
        elapsed_s = time.perf_counter() - start_s
        print(f"{backend:>16}: {results}  in {elapsed_s:.2f} s")
    start_s = time.perf_counter()
    Parallel(n_jobs=3, verbose=5)(delayed(time.sleep)(1) for _ in range(10))
    print(f"ten sleep(1) calls on 3 workers: {time.perf_counter() - start_s:.2f} s (ideal 4.0 s)")


if __name__ == "__main__":
    main()
