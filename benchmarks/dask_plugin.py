"""The plugin on dask beside loky: synthetic suites, ``--n-jobs=2``, the dask backend on a
LocalCluster the run starts for itself (its start-up included, as a user sees it), alternating
runs, medians. Usage::

    python benchmarks/dask_plugin.py [--suites cpu,fixtures] [--rounds 3] [--scale 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from main_cost import _env
from synthetic import write_suite

MODES = {
    "loky": ["--n-jobs=2", "--par-backend=loky"],
    # loky's workers collecting for themselves, as dask workers must (they are not forks)
    "loky, collect": ["--n-jobs=2", "--par-backend=loky", "--par-start=collect"],
    "dask": ["--n-jobs=2", "--par-backend=dask"],
}


def wall(folder: Path, flags: list[str]) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    started = time.perf_counter()
    done = subprocess.run([*command, *flags], cwd=folder, env=_env(), capture_output=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(
            f"{' '.join(flags)} exited with {done.returncode}\n{done.stdout[-2000:]!r}"
        )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--suites", default="cpu,fixtures")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=1)
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        for suite in options.suites.split(","):
            folder = Path(temporary) / suite
            write_suite(suite, folder, options.scale)
            for flags in MODES.values():
                wall(folder, flags)  # warm-up: bytecode caches
            times: dict[str, list[float]] = {mode: [] for mode in MODES}
            for round_ in range(options.rounds):
                order = list(MODES)[round_ % len(MODES) :] + list(MODES)[: round_ % len(MODES)]
                for mode in order:
                    times[mode].append(wall(folder, MODES[mode]))
                    print(
                        f"{suite} round {round_ + 1} {mode}: {times[mode][-1]:.2f} s",
                        file=sys.stderr,
                    )
            loky, collect, dask = (statistics.median(times[mode]) for mode in MODES)
            rows.append(
                f"| {suite} | {loky:.2f} s | {collect:.2f} s | {dask:.2f} s | {dask / loky:.2f} "
                f"| {dask / collect:.2f} |"
            )
    print(f"--n-jobs=2, scale {options.scale}, medians of {options.rounds} alternating rounds")
    print(
        "| suite | loky | loky, --par-start=collect | dask (LocalCluster started by the run) "
        "| dask / loky | dask / loky collect |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
