"""The fastest any collect-once runner could be on this machine, suite by suite, and how far
pytest-parproc's default backend is from it.

A runner that collects in the main process (as pytest-parproc does) cannot start a test before
``pytest --collect-only`` would have finished, and N workers on N cores at best divide what
the tests take in a serial run, except set-up that every worker pays again (a session fixture
is set up once per worker process). So no such runner beats::

    wall(--collect-only) + (wall(serial) - wall(--collect-only) - S) / N + S

where S is that per-worker set-up (``PER_WORKER_SETUP_S`` of the suite set). The tests' part
is taken from the serial run's wall time, so tests that wait (sleep) count as well as tests
that compute.

That assumes N cores run N processes each as fast as one alone. On shared or hyperthreaded
machines they do not, so the script also times N serial runs started at once (``N x serial``:
the slowest of them) and prints a second bound with the tests' part stretched by what that
showed, ``(wall(N x serial) - wall(--collect-only)) / (wall(serial) - wall(--collect-only))``:
the limit of this machine rather than of ideal cores.

Each command runs once untimed (bytecode caches, recorded durations), then ``--repeat``
rounds run every command of a suite once, alternating; medians are printed, and the ratio of
``--n-jobs=N`` to each bound (the issue's goal: at most 1.10). Usage::

    python benchmarks/bound.py [--set synthetic|independent] [--suites a,b] [--jobs N]
                               [--repeat R] [--scale K] [--in-place]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from race import _child_env  # noqa: E402  (the race children's environment, the same here)

#: The issue's goal: the default backend within this factor of the bound.
GOAL = 1.10


def timed(command: list[str], folder: Path, env: dict[str, str], copies: int = 1) -> float:
    """Wall seconds of ``copies`` simultaneous runs (until the last ends); a failing run stops
    the script with its output."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(copies)
    ]
    outputs = [process.communicate()[0] for process in processes]
    wall = time.perf_counter() - started
    for process, output in zip(processes, outputs, strict=True):
        if process.returncode not in (0, 5):
            raise SystemExit(f"{' '.join(command)} failed:\n{output.decode()[-2000:]}")
    return wall


def commands(jobs: int, in_place: bool) -> dict[str, tuple[list[str], int]]:
    """Each measured command, and how many copies of it run at once."""
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist"]
    parproc = ["-p", "no:parproc", "-p", "pytest_parproc.plugin"] if in_place else []
    serial = [*base, "-p", "no:parproc"]
    return {
        "collect-only": ([*serial, "--collect-only"], 1),
        "serial": (serial, 1),
        # The copies share the folder: they leave the cache (recorded durations) alone.
        "N x serial": ([*serial, "-p", "no:cacheprovider"], jobs),
        "parproc": ([*base, *parproc, f"--n-jobs={jobs}"], 1),
    }


def measure(name: str, options: argparse.Namespace, suite_set: object) -> dict[str, float]:
    runs = commands(options.jobs, options.in_place)
    env = _child_env(options.in_place)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / name
        suite_set.write_suite(name, folder, options.scale)  # type: ignore[attr-defined]
        for command, copies in runs.values():
            timed(command, folder, env, copies)  # warm-up: bytecode, recorded durations
        walls: dict[str, list[float]] = {label: [] for label in runs}
        for round_ in range(options.repeat):
            labels = list(runs)
            labels = labels[round_ % len(labels) :] + labels[: round_ % len(labels)]
            for label in labels:
                command, copies = runs[label]
                walls[label].append(timed(command, folder, env, copies))
                print(f"{name} {label}: {walls[label][-1]:.2f} s", file=sys.stderr)
    medians = {label: statistics.median(values) for label, values in walls.items()}
    setup = suite_set.PER_WORKER_SETUP_S.get(name, 0.0)  # type: ignore[attr-defined]
    tests = medians["serial"] - medians["collect-only"]
    medians["bound"] = medians["collect-only"] + (tests - setup) / options.jobs + setup
    medians["setup"] = setup
    medians["stretch"] = max(1.0, (medians["N x serial"] - medians["collect-only"]) / tests)
    stretched = (tests - setup) * medians["stretch"] / options.jobs + setup
    medians["machine bound"] = medians["collect-only"] + stretched
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--set", choices=("synthetic", "independent"), default="synthetic")
    parser.add_argument("--suites", help="comma-separated (default: all of the set)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--in-place", action="store_true", help="load this checkout's plugin")
    options = parser.parse_args()
    suite_set = importlib.import_module(options.set)
    names = options.suites.split(",") if options.suites else list(suite_set.SUITES)
    n = options.jobs
    print(
        f"| set | suite | --collect-only | serial | per-worker set-up | bound on {n} "
        f"| parproc --n-jobs={n} | parproc / bound | goal <= {GOAL:.2f} | {n} x serial at once "
        "| stretch | machine bound | parproc / machine bound |"
    )
    print("|---" * 13 + "|")
    for name in names:
        m = measure(name, options, suite_set)
        ratio = m["parproc"] / m["bound"]
        verdict = "met" if ratio <= GOAL else "not met"
        print(
            f"| {options.set} | {name} | {m['collect-only']:.2f} | {m['serial']:.2f} | "
            f"{m['setup']:.1f} | {m['bound']:.2f} | {m['parproc']:.2f} | **{ratio:.2f}** | "
            f"{verdict} | {m['N x serial']:.2f} | {m['stretch']:.2f} | {m['machine bound']:.2f} "
            f"| {m['parproc'] / m['machine bound']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
