"""Side-by-side benchmark of the pytest_parproc engine and joblib 1.6, one fresh process a run."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

LIBRARIES = ("ours", "joblib")
DEFAULT_REPEAT = 5
QUICK_REPEAT = 2

SLEEP_TASKS = 10
SLEEP_N_JOBS = 3
SLEEP_TASK_S = 1.0
# 10 one-second tasks on 3 workers need 4 rounds: 4.0 s is the ideal, and the goal is 1% over it.
SLEEP_IDEAL_S = 4.0
SLEEP_LIMIT_S = 4.04

OVERHEAD_TASKS = 20_000
OVERHEAD_WARMUP_TASKS = 100
OVERHEAD_N_JOBS = 2
PROCESS_BACKENDS = ("loky", "multiprocessing")

POOL_START_TASKS = 2
POOL_START_N_JOBS = 2

# A child that has not answered in this long is hung; the run is recorded as an error.
CHILD_TIMEOUT_S = 180.0

GoalKind = Literal["ours_at_most_s", "ratio_at_most"]


def identity(value: object) -> object:
    """The trivial task: its cost is the engine's overhead."""
    return value


# --------------------------------------------------------------------------------------------
# Child side: runs exactly one measurement with one library and prints one JSON line.
# --------------------------------------------------------------------------------------------


def _load_library(library: str) -> tuple[Any, Any, str]:
    module_names = {"ours": "pytest_parproc", "joblib": "joblib"}
    module = importlib.import_module(module_names[library])
    return module.Parallel, module.delayed, module.__version__


def _load_backend_modules(parallel: Any, backend: str | None) -> None:
    """Import what a call of this backend needs before the clock starts.

    ``import joblib`` loads its backends eagerly; ``import pytest_parproc`` loads them on first
    use. Building a one-job ``Parallel`` (which starts no worker) puts both libraries in the
    same state, so the timed call measures the call, not module imports.
    """
    if backend is None:
        parallel(n_jobs=1)
    else:
        parallel(n_jobs=1, backend=backend)


def _measure_sleep(parallel: Any, delayed: Any, backend: str, mode: str) -> float:
    _load_backend_modules(parallel, backend)
    if mode == "warm":
        # Starts the workers (3 of them, as the timed call uses) so the timed call reuses them.
        warmup = parallel(n_jobs=SLEEP_N_JOBS, backend=backend)(
            delayed(identity)(index) for index in range(SLEEP_N_JOBS)
        )
        _check(warmup, list(range(SLEEP_N_JOBS)))
    start_s = time.perf_counter()
    results = parallel(n_jobs=SLEEP_N_JOBS, backend=backend)(
        delayed(time.sleep)(SLEEP_TASK_S) for _ in range(SLEEP_TASKS)
    )
    elapsed_s = time.perf_counter() - start_s
    _check(results, [None] * SLEEP_TASKS)
    return elapsed_s


def _measure_overhead(parallel: Any, delayed: Any, backend: str, mode: str) -> float:
    warmup = parallel(n_jobs=OVERHEAD_N_JOBS, backend=backend)(
        delayed(identity)(index) for index in range(OVERHEAD_WARMUP_TASKS)
    )
    _check(warmup, list(range(OVERHEAD_WARMUP_TASKS)))
    start_s = time.perf_counter()
    results = parallel(n_jobs=OVERHEAD_N_JOBS, backend=backend)(
        delayed(identity)(index) for index in range(OVERHEAD_TASKS)
    )
    elapsed_s = time.perf_counter() - start_s
    _check(results, list(range(OVERHEAD_TASKS)))
    if backend in PROCESS_BACKENDS:
        # Untimed: a fast number from tasks that quietly ran in this process would be a false win.
        worker_ids = parallel(n_jobs=OVERHEAD_N_JOBS, backend=backend)(
            delayed(os.getpid)() for _ in range(OVERHEAD_WARMUP_TASKS)
        )
        if os.getpid() in worker_ids:
            raise AssertionError(f"backend {backend!r} ran tasks in the calling process")
    return elapsed_s / OVERHEAD_TASKS


def _measure_pool_start(parallel: Any, delayed: Any, backend: str, mode: str) -> float:
    # The default backend on purpose: the row measures what a user gets without choosing one.
    _load_backend_modules(parallel, None)
    start_s = time.perf_counter()
    results = parallel(n_jobs=POOL_START_N_JOBS)(
        delayed(identity)(index) for index in range(POOL_START_TASKS)
    )
    elapsed_s = time.perf_counter() - start_s
    _check(results, list(range(POOL_START_TASKS)))
    return elapsed_s


MEASURE_FUNCTIONS: dict[str, Callable[[Any, Any, str, str], float]] = {
    "sleep": _measure_sleep,
    "overhead": _measure_overhead,
    "pool_start": _measure_pool_start,
}


def _check(results: object, expected: list[Any]) -> None:
    if list(results) != expected:  # type: ignore[call-overload]
        raise AssertionError(f"wrong results: got {results!r:.200}")


def run_child(kind: str, library: str, backend: str, mode: str) -> None:
    parallel, delayed, version = _load_library(library)
    value_s = MEASURE_FUNCTIONS[kind](parallel, delayed, backend, mode)
    print(json.dumps({"value_s": value_s, "library_version": version}), flush=True)


# --------------------------------------------------------------------------------------------
# Parent side: schedules the children, alternating libraries, and prints the table.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One row of the table: what is measured, how it is shown and what it must reach."""

    label: str
    kind: str
    backend: str
    mode: str
    unit: Literal["s", "us"]
    goal_kind: GoalKind
    goal_value: float

    @property
    def goal_text(self) -> str:
        if self.goal_kind == "ours_at_most_s":
            return f"ours <= {self.goal_value:.2f} s"
        return f"ratio <= {self.goal_value:.2f}"


@dataclass
class RunRecord:
    """The outcome of one child process."""

    measurement: str
    backend: str
    library: str
    repetition: int
    value_s: float | None
    child_wall_s: float
    library_version: str | None = None
    error: str | None = None


@dataclass
class RowSummary:
    measurement: Measurement
    ours_values_s: list[float] = field(default_factory=list)
    joblib_values_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ours_median_s(self) -> float | None:
        return statistics.median(self.ours_values_s) if self.ours_values_s else None

    @property
    def joblib_median_s(self) -> float | None:
        return statistics.median(self.joblib_values_s) if self.joblib_values_s else None

    @property
    def ratio(self) -> float | None:
        ours, joblib = self.ours_median_s, self.joblib_median_s
        if ours is None or joblib is None or joblib == 0:
            return None
        return ours / joblib

    @property
    def verdict(self) -> str:
        goal_kind, goal_value = self.measurement.goal_kind, self.measurement.goal_value
        if goal_kind == "ours_at_most_s":
            ours = self.ours_median_s
            if ours is None:
                return "ERROR"
            return "PASS" if ours <= goal_value else "FAIL"
        ratio = self.ratio
        if ratio is None:
            return "ERROR"
        return "PASS" if ratio <= goal_value else "FAIL"


def build_measurements(include_sleep: bool) -> list[Measurement]:
    measurements: list[Measurement] = []
    if include_sleep:
        for label, backend, mode in (
            ("sleep (cold)", "loky", "cold"),
            ("sleep (warm)", "loky", "warm"),
            ("sleep", "multiprocessing", "single"),
            ("sleep", "threading", "single"),
        ):
            measurements.append(
                Measurement(label, "sleep", backend, mode, "s", "ours_at_most_s", SLEEP_LIMIT_S)
            )
    for backend, goal_ratio in (("loky", 1.0), ("multiprocessing", 1.0), ("threading", 0.5)):
        measurements.append(
            Measurement(
                label="overhead per task",
                kind="overhead",
                backend=backend,
                mode="single",
                unit="us",
                goal_kind="ratio_at_most",
                goal_value=goal_ratio,
            )
        )
    measurements.append(
        Measurement("pool start", "pool_start", "loky", "single", "s", "ratio_at_most", 1.0)
    )
    return measurements


def run_child_process(measurement: Measurement, library: str, repetition: int) -> RunRecord:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        "--kind",
        measurement.kind,
        "--library",
        library,
        "--backend",
        measurement.backend,
        "--mode",
        measurement.mode,
    ]
    record = RunRecord(
        measurement=measurement.label,
        backend=measurement.backend,
        library=library,
        repetition=repetition,
        value_s=None,
        child_wall_s=0.0,
    )
    start_s = time.perf_counter()
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        record.child_wall_s = time.perf_counter() - start_s
        record.error = f"child timed out after {CHILD_TIMEOUT_S:.0f} s"
        return record
    record.child_wall_s = time.perf_counter() - start_s
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    if completed.returncode != 0 or not lines:
        stderr_tail = completed.stderr.strip().splitlines()[-5:]
        record.error = f"exit status {completed.returncode}: " + " | ".join(stderr_tail)
        return record
    try:
        answer = json.loads(lines[-1])
    except json.JSONDecodeError:
        record.error = f"unreadable child output: {lines[-1]!r:.200}"
        return record
    record.value_s = float(answer["value_s"])
    record.library_version = str(answer["library_version"])
    return record


def format_value(value_s: float | None, unit: str) -> str:
    if value_s is None:
        return "error"
    if unit == "us":
        return f"{value_s * 1e6:.1f} us"
    return f"{value_s:.3f} s"


def format_table(summaries: Sequence[RowSummary]) -> str:
    header = (
        "measurement",
        "backend",
        "ours median",
        "joblib median",
        "ours/joblib",
        "goal",
        "verdict",
    )
    rows = [header]
    for summary in summaries:
        measurement = summary.measurement
        ratio = summary.ratio
        rows.append(
            (
                measurement.label,
                measurement.backend,
                format_value(summary.ours_median_s, measurement.unit),
                format_value(summary.joblib_median_s, measurement.unit),
                "n/a" if ratio is None else f"{ratio:.2f}",
                measurement.goal_text,
                summary.verdict,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    # Text columns are left-aligned, numbers right-aligned.
    right_aligned = {2, 3, 4}

    def render(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if column in right_aligned else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    separator = "  ".join("-" * width for width in widths)
    return "\n".join([render(rows[0]), separator, *(render(row) for row in rows[1:])])


def run_benchmark(repeat: int, include_sleep: bool) -> tuple[list[RowSummary], list[RunRecord]]:
    measurements = build_measurements(include_sleep)
    summaries = [RowSummary(measurement) for measurement in measurements]
    records: list[RunRecord] = []
    for repetition in range(1, repeat + 1):
        for summary in summaries:
            measurement = summary.measurement
            # Ours then joblib, back to back, so slow drift of a noisy machine hits both alike.
            for library in LIBRARIES:
                print(
                    f"[rep {repetition}/{repeat}] {measurement.label} / {measurement.backend}"
                    f" / {library} ...",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
                record = run_child_process(measurement, library, repetition)
                records.append(record)
                if record.value_s is None:
                    summary.errors.append(f"{library} rep {repetition}: {record.error}")
                    print(f" ERROR: {record.error}", file=sys.stderr, flush=True)
                    continue
                values = summary.ours_values_s if library == "ours" else summary.joblib_values_s
                values.append(record.value_s)
                print(
                    f" {format_value(record.value_s, measurement.unit)}"
                    f" (child {record.child_wall_s:.2f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    return summaries, records


def write_json(
    path: str, repeat: int, summaries: Sequence[RowSummary], records: Sequence[RunRecord]
) -> None:
    versions = {
        record.library: record.library_version for record in records if record.library_version
    }
    document = {
        "python": sys.version,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "repeat": repeat,
        "library_versions": versions,
        "rows": [
            {
                "measurement": summary.measurement.label,
                "backend": summary.measurement.backend,
                "unit": summary.measurement.unit,
                "goal": summary.measurement.goal_text,
                "ours_values_s": summary.ours_values_s,
                "joblib_values_s": summary.joblib_values_s,
                "ours_median_s": summary.ours_median_s,
                "joblib_median_s": summary.joblib_median_s,
                "ratio": summary.ratio,
                "verdict": summary.verdict,
                "errors": summary.errors,
            }
            for summary in summaries
        ],
        "runs": [asdict(record) for record in records],
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare the pytest_parproc engine with joblib 1.6, one fresh process a run."
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"repetitions of every measurement (default {DEFAULT_REPEAT}, {QUICK_REPEAT} with "
        "--quick); the table shows medians",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a fast check: {QUICK_REPEAT} repetitions and no 4-second sleep rows",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the raw numbers to PATH")
    # The child interface: internal, used by the parent to run one measurement in a fresh process.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=sorted(MEASURE_FUNCTIONS), help=argparse.SUPPRESS)
    parser.add_argument("--library", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="single", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.repeat is not None and arguments.repeat < 1:
        parser.error("--repeat must be at least 1")
    if arguments.child and (arguments.kind is None or arguments.library is None):
        parser.error("--child needs --kind and --library")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.child:
        run_child(arguments.kind, arguments.library, arguments.backend, arguments.mode)
        return 0
    repeat = arguments.repeat or (QUICK_REPEAT if arguments.quick else DEFAULT_REPEAT)
    start_s = time.perf_counter()
    summaries, records = run_benchmark(repeat, include_sleep=not arguments.quick)
    total_s = time.perf_counter() - start_s
    print(f"finished in {total_s:.0f} s", file=sys.stderr, flush=True)
    if arguments.json:
        write_json(arguments.json, repeat, summaries, records)
    print(format_table(summaries))
    return 0 if all(summary.verdict == "PASS" for summary in summaries) else 1


# The guard matters: the multiprocessing and loky backends may start workers with spawn or
# forkserver, which import this module again as __mp_main__.
if __name__ == "__main__":
    sys.exit(main())
