"""The fastest any collect-once runner could be on this machine, for one synthetic suite.

A runner that collects in the main process (as pytest-parproc does) cannot start a test before
``pytest --collect-only`` would have finished, and N cores at best divide the CPU time the
tests take in a serial run. So on N cores no such runner beats::

    wall(--collect-only) + (CPU(serial run) - CPU(--collect-only)) / N

This script measures those (medians of ``--repeat`` runs, CPU from ``getrusage`` of the
children) next to a ``--n-jobs=N`` run, and prints the bound. Usage::

    python benchmarks/bound.py SUITE [--jobs N] [--repeat R] [--scale K]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import write_suite


def timed(command: list[str], folder: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the process and its children) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 5):
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scale", type=int, default=1)
    options = parser.parse_args()
    drop = ("PYTHONDONTWRITEBYTECODE", "PYTEST_ADDOPTS")
    env = {name: value for name, value in os.environ.items() if name not in drop}
    env["PYTHONHASHSEED"] = "0"
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist"]
    commands = {
        "collect-only": [*base, "-p", "no:parproc", "--collect-only"],
        "serial": [*base, "-p", "no:parproc"],
        "parproc": [*base, f"--n-jobs={options.jobs}"],
    }
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / options.suite
        write_suite(options.suite, folder, options.scale)
        for command in commands.values():
            timed(command, folder, env)  # warm-up: bytecode, recorded durations
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(options.repeat):
            for name, command in commands.items():
                runs[name].append(timed(command, folder, env))
    wall = {name: statistics.median(w for w, _ in values) for name, values in runs.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in runs.items()}
    for name in commands:
        print(f"{options.suite} {name:13s} wall {wall[name]:6.2f} s  cpu {cpu[name]:6.2f} s")
    bound = wall["collect-only"] + (cpu["serial"] - cpu["collect-only"]) / options.jobs
    print(f"{options.suite} bound on {options.jobs} cores: {bound:.2f} s")


if __name__ == "__main__":
    main()
