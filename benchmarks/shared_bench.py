"""Shared fixtures against per-worker session fixtures: the synthetic ``fixtures`` suite (an
autouse session fixture of 1 s, ten modules with a 0.3 s module fixture each), once as written
(its session fixture runs in every worker) and once with that fixture made ``@shared_fixture``
(it runs once, in the main process). Whole ``pytest`` commands, alternating, medians.

``--setup sleep`` (default) keeps the suite's ``time.sleep(1.0)``, a fixture that waits (a
server starting); ``--setup cpu`` makes it a second of CPU work (building a data set), which
workers doing it at the same time share the cores for. Usage::

    python benchmarks/shared_bench.py [--n-jobs 2,4] [--setup sleep|cpu] [--rounds 5]
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

SLEEP = "    time.sleep(1.0)\n"
#: about a second of one core's time on the 2-core development machine
CPU = "    total = 0\n    for i in range(8_600_000):\n        total += i * i % 7\n"


def write_variants(folder: Path, setup: str) -> dict[str, Path]:
    """The suite twice: ``per-worker`` as ``synthetic.py`` writes it, and ``shared``."""
    found = {}
    for variant in ("per-worker", "shared"):
        where = folder / variant
        write_suite("fixtures", where)
        conftest = (where / "conftest.py").read_text()
        assert SLEEP in conftest, "synthetic.py's fixtures suite changed: update this script"
        conftest = conftest.replace(SLEEP, SLEEP if setup == "sleep" else CPU)
        if variant == "shared":
            old = '@pytest.fixture(scope="session", autouse=True)'
            assert old in conftest
            conftest = conftest.replace(old, "@shared_fixture(autouse=True)")
            conftest = "from pytest_parproc import shared_fixture\n" + conftest
        (where / "conftest.py").write_text(conftest)
        found[variant] = where
    return found


def wall(folder: Path, n_jobs: int) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, f"--n-jobs={n_jobs}", "--par-backend=loky"],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{folder.name} --n-jobs={n_jobs} exited {done.returncode}\n{done.stdout}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n-jobs", default="2", help="comma-separated, e.g. 2,4")
    parser.add_argument("--setup", choices=("sleep", "cpu"), default="sleep")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        variants = write_variants(Path(temporary), options.setup)
        for n_jobs in (int(value) for value in options.n_jobs.split(",")):
            for folder in variants.values():
                wall(folder, n_jobs)  # warm-up: bytecode caches
            times: dict[str, list[float]] = {name: [] for name in variants}
            for round_ in range(options.rounds):
                order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
                for name in order:
                    times[name].append(wall(variants[name], n_jobs))
                    print(f"n_jobs={n_jobs} {name}: {times[name][-1]:.2f} s", file=sys.stderr)
            per_worker, shared = (statistics.median(times[name]) for name in variants)
            rows.append(
                f"| {n_jobs} | {per_worker:.2f} s | {shared:.2f} s | {shared / per_worker:.2f} |"
            )
    print(
        f"fixtures suite, session fixture {options.setup}, loky, medians of {options.rounds} "
        "alternating rounds"
    )
    print("| --n-jobs | per-worker session fixture | @shared_fixture | shared / per-worker |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
