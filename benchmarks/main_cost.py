"""The main process's CPU cost per test of a parallel run, at several worker counts.

A parallel run's main process collects (as a serial run does), then hands tests to workers and
replays their reports: deserializing, ``pytest_runtest_logreport`` for every plugin, the
timing table, bookkeeping. This script measures that second part, per test::

    CPU of the main process from the start of pytest_runtestloop to its exit / tests

CPU is ``getrusage(RUSAGE_SELF)`` of the pytest process (all its threads, none of its worker
processes), so the figure hardly depends on what else the machine runs, and it can be measured
for 16 workers on 2 cores. The same figure for a serial run (``n_jobs=1``: pytest's own loop,
running the tests) is printed for scale. The main thread's CPU inside pytest's reporting hooks
(``pytest_runtest_logstart``, ``_logreport`` and ``_logfinish``, every plugin's implementations)
is printed apart: a serial run makes the same calls, so that part is not the runner's. Each
run is a fresh ``python -m pytest``; the medians of ``--repeat`` runs are printed, alternating
the worker counts. Usage::

    python benchmarks/main_cost.py [--suite trivial] [--scale 4] [--jobs 2,4,8,16] [--repeat 5]
                                   [--backend loky] [--set synthetic|independent]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

#: Runs pytest in-process; prints the CPU seconds from the run loop's start to the end, and the
#: main thread's CPU seconds inside pytest's reporting hooks (``logstart``, ``logreport``,
#: ``logfinish``, with every plugin's implementations): the calls a serial run makes too.
_CHILD = """
import json, resource, sys, time, pytest

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

class Mark:
    started = None
    hooks = 0.0

    def _timed(self):
        started = time.thread_time()
        try:
            return (yield)
        finally:
            Mark.hooks += time.thread_time() - started

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self):
        Mark.started = cpu()
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logstart(self):
        return (yield from self._timed())

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self):
        return (yield from self._timed())

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logfinish(self):
        return (yield from self._timed())

status = pytest.main(sys.argv[1:], plugins=[Mark()])
print(json.dumps({"status": int(status), "cpu": cpu() - Mark.started, "hooks": Mark.hooks}))
"""


def _env(tree: Path = ROOT) -> dict[str, str]:
    drop = ("PYTHONDONTWRITEBYTECODE", "PYTEST_ADDOPTS")
    env = {
        k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST_PARPROC_")
    }
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH", "")]))
    return env


def main_cpu(folder: Path, flags: list[str], tree: Path = ROOT) -> tuple[float, float]:
    """CPU seconds of the main pytest process for one run with ``flags``, importing
    pytest_parproc from ``tree``, and those of its main thread inside the reporting hooks."""
    base = ["-q", "-p", "no:randomly", "-p", "no:xdist"]
    command = [sys.executable, "-c", _CHILD, *base, *flags]
    done = subprocess.run(command, cwd=folder, env=_env(tree), capture_output=True, text=True)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    try:
        result = json.loads(last)
    except json.JSONDecodeError as error:
        raise SystemExit(
            f"{' '.join(flags)}: no result\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        ) from error
    if result["status"] not in (0, 5):
        raise SystemExit(f"{' '.join(flags)} exited with {result['status']}\n{done.stdout[-2000:]}")
    return float(result["cpu"]), float(result["hooks"])


def _tests(folder: Path) -> int:
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly"]
    done = subprocess.run(command, cwd=folder, env=_env(), capture_output=True, text=True)
    return sum(1 for line in done.stdout.splitlines() if "::" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="trivial")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--jobs", default="2,4,8,16")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", default="loky")
    parser.add_argument("--set", choices=("synthetic", "independent"), default="synthetic")
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout of pytest-parproc (say, a git worktree of an older commit): "
        "its runs alternate with this checkout's, labelled 'base'",
    )
    options = parser.parse_args()
    write_suite = __import__(options.set).write_suite
    jobs = [int(part) for part in options.jobs.split(",")]
    columns: dict[str, tuple[list[str], Path]] = {"serial": (["-p", "no:parproc"], ROOT)}
    for n in jobs:
        flags = [f"--n-jobs={n}", f"--par-backend={options.backend}"]
        columns[f"n_jobs={n}"] = (flags, ROOT)
        if options.compare:
            columns[f"base n_jobs={n}"] = (flags, options.compare.resolve())
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / options.suite
        write_suite(options.suite, folder, options.scale)
        tests = _tests(folder)
        for flags, tree in columns.values():
            main_cpu(folder, flags, tree)  # warm-up: bytecode caches
        cpu: dict[str, list[float]] = {name: [] for name in columns}
        hooks: dict[str, list[float]] = {name: [] for name in columns}
        for round_ in range(options.repeat):
            names = list(columns)
            names = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in names:
                total, in_hooks = main_cpu(folder, *columns[name])
                cpu[name].append(total)
                hooks[name].append(in_hooks)
                print(f"round {round_ + 1} {name}: {total:.3f} s", file=sys.stderr)
    print(
        f"{options.set} {options.suite} x{options.scale}: {tests} tests, "
        f"{options.backend}, medians of {options.repeat}"
    )
    print(
        "| run | main process CPU from the run loop on, median s | per test | least "
        "| of which pytest's reporting hooks, per test | the rest, per test | runs |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, values in cpu.items():
        median = statistics.median(values)
        runs = " ".join(f"{value:.2f}" for value in values)
        least = min(values) / tests * 1e6
        in_hooks = statistics.median(hooks[name]) / tests * 1e6
        rest = (
            statistics.median(a - b for a, b in zip(values, hooks[name], strict=True)) / tests * 1e6
        )
        print(
            f"| {name} | {median:.3f} | {median / tests * 1e6:.0f} us | {least:.0f} us "
            f"| {in_hooks:.0f} us | {rest:.0f} us | {runs} |"
        )


if __name__ == "__main__":
    main()
