"""pytest-cov beside the plugin: serial pytest, pytest-xdist ``-n N`` and pytest-parproc
``--n-jobs=N`` on one suite, with and without coverage, alternating; medians and ratios.

Usage::

    python benchmarks/synthetic.py trivial /tmp/trivial
    python benchmarks/coverage_bench.py /tmp/trivial [--jobs 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def commands(jobs: int) -> dict[str, list[str]]:
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    cov = ["--cov=.", "--cov-report="]
    xdist = ["-p", "no:parproc", "-n", str(jobs)]
    ours = [f"--n-jobs={jobs}"]
    return {
        "serial": base,
        "serial + cov": base + cov,
        f"xdist -n {jobs}": base + xdist,
        f"xdist -n {jobs} + cov": base + xdist + cov,
        f"parproc --n-jobs={jobs}": base + ours,
        f"parproc --n-jobs={jobs} + cov": base + ours + cov,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("suite", type=Path, help="a suite folder (benchmarks/synthetic.py)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs = commands(args.jobs)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, command in runs.items():  # alternating: drift hits every command alike
            for leftover in args.suite.glob(".coverage*"):
                leftover.unlink()
            started = time.perf_counter()
            done = subprocess.run(command, cwd=args.suite, capture_output=True, text=True)
            times[name].append(time.perf_counter() - started)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            print(f"{name}: {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:30} {value:6.2f} s")
    jobs = args.jobs
    ours_cov = medians[f"parproc --n-jobs={jobs} + cov"]
    print(f"parproc + cov / xdist + cov   {ours_cov / medians[f'xdist -n {jobs} + cov']:.2f}")
    print(f"parproc + cov / parproc       {ours_cov / medians[f'parproc --n-jobs={jobs}']:.2f}")
    print(f"serial + cov / serial         {medians['serial + cov'] / medians['serial']:.2f}")


if __name__ == "__main__":
    main()
