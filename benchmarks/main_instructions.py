"""The main process's work per test, counted in instructions (valgrind's callgrind), so that a
noisy shared machine gives the same figure every time and worker counts beyond its cores can be
compared: ``main_cost.py``'s CPU seconds move with what the other processes do to the caches.

For each worker count N, two runs of ``pytest --n-jobs=N`` on the suite, each under callgrind
(forked workers are counted separately and ignored): one that runs every test, and one with
``-k`` deselecting them all (the same start-up and collection, no test run). Their difference
in the main process's instructions, divided by the number of tests, is the figure. Slow (the
main process runs about 50 times slower under callgrind), so one run of each is taken: the
counts repeat to a fraction of a percent. Usage::

    python benchmarks/main_instructions.py [--suite trivial] [--scale 1] [--jobs 2,16]
                                           [--compare PATH] [--backend loky]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from main_cost import ROOT, _env, _tests

#: A -k expression no test of the synthetic suites matches.
_NONE = "parproc_matches_no_test"


def main_instructions(folder: Path, flags: list[str], tree: Path, scratch: Path) -> int:
    """Instructions of the main pytest process for one run (its callgrind file is the one named
    after the pid of the process started here; valgrind runs python in that same process)."""
    out = scratch / "callgrind.%p"
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist", *flags,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=folder, env=_env(tree), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = process.communicate()[0].decode(errors="replace")
    if process.returncode not in (0, 5):
        raise SystemExit(f"{' '.join(flags)} exited with {process.returncode}\n{output[-2000:]}")
    text = (scratch / f"callgrind.{process.pid}").read_text()
    for path in scratch.glob("callgrind.*"):
        path.unlink()
    found = re.search(r"^totals: (\d+)", text, re.MULTILINE)
    if found is None:
        raise SystemExit(f"no totals in the main process's callgrind file ({' '.join(flags)})")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--suite", default="trivial")
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--jobs", default="2,16")
    parser.add_argument("--backend", default="loky")
    parser.add_argument("--set", choices=("synthetic", "independent"), default="synthetic")
    parser.add_argument("--compare", type=Path, help="another checkout, labelled 'base'")
    options = parser.parse_args()
    write_suite = __import__(options.set).write_suite
    trees = {"this checkout": ROOT}
    if options.compare:
        trees["base"] = options.compare.resolve()
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        scratch = Path(temporary)
        folder = scratch / options.suite
        write_suite(options.suite, folder, options.scale)
        tests = _tests(folder)
        for n in [int(part) for part in options.jobs.split(",")]:
            flags = [f"--n-jobs={n}", f"--par-backend={options.backend}"]
            for label, tree in trees.items():
                subprocess.run(  # warm-up, uncounted: bytecode caches, recorded durations
                    [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *flags],
                    cwd=folder, env=_env(tree), capture_output=True, check=False,
                )  # fmt: skip
                full = main_instructions(folder, flags, tree, scratch)
                empty = main_instructions(folder, [*flags, "-k", _NONE], tree, scratch)
                rows.append((label, n, full, empty))
                print(f"{label} n_jobs={n}: {full:,} / {empty:,}", file=sys.stderr)
    print(f"{options.set} {options.suite} x{options.scale}: {tests} tests, {options.backend}")
    print("| code | n_jobs | main process instructions | without the tests | per test |")
    print("|---|---|---|---|---|")
    for label, n, full, empty in rows:
        print(f"| {label} | {n} | {full:,} | {empty:,} | {(full - empty) / tests:,.0f} |")


if __name__ == "__main__":
    main()
