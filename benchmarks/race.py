"""Race serial pytest, pytest-xdist and pytest-parproc's backends over the synthetic suites.

For each suite (written by ``synthetic.py`` into a temporary folder) the commands are:

* ``serial``: plain ``pytest``;
* ``xdist load`` and ``xdist worksteal``: ``pytest -n N --dist load|worksteal``;
* ``parproc loky (default)``: ``pytest --n-jobs=N`` (no ``--par-backend``: loky is the default);
* ``parproc B``: ``pytest --n-jobs=N --par-backend=B`` for the other backends in ``--backends``.

Every run is ``python -m pytest -q -p no:randomly ...`` in a fresh process whose working
directory is the suite's folder. Each command loads only its own tool (``-p no:parproc`` for
serial and xdist, ``-p no:xdist`` for parproc), so no column pays for the other plugin.
Children write bytecode (``PYTHONDONTWRITEBYTECODE`` is dropped), use ``PYTHONHASHSEED=0``, and
keep pytest's cache: every command first runs once untimed, which fills the bytecode caches
and pytest-parproc's recorded test durations (the ``skewed`` suite is meant to be measured
with those known). Then each of ``--repeat`` repetitions runs every command once, the order
rotated from one repetition to the next. A run's wall time is measured from starting the
process to its exit (like ``time pytest``); worker processes that outlive it are reported,
and killed before the next run. The table gives median wall seconds and the ratios of each
parproc column to the best xdist mode and to serial. Usage::

    python benchmarks/race.py [--jobs N] [--scale K] [--repeat R] [--suites trivial,cpu,...]
                              [--backends loky,multiprocessing,threading] [--in-place]
                              [--no-xdist] [--json PATH] [--keep-going]
                              [--extra 'LABEL=FLAGS' ...]

``--extra`` adds a column: the first backend of ``--backends`` with more flags (for instance
``--extra 'bar=--par-progress=bar'``); after the table, each extra column's median is given
against the plain column of that backend, from the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthetic import SUITES, write_suite

ROOT = Path(__file__).resolve().parents[1]

#: Environment variables that would change what a child run does behind its command line.
_DROPPED = ("PYTHONDONTWRITEBYTECODE", "PYTEST_ADDOPTS")
_DROPPED_PREFIXES = ("PYTEST_PARPROC_",)

#: How long processes left behind by a run may take to leave on their own.
_STRAGGLER_GRACE_S = 2.0


@dataclass
class Column:
    """One command of the race."""

    label: str
    tool: str  # "serial", "xdist" or "parproc"
    flags: list[str]


@dataclass
class Result:
    """One column's runs over one suite."""

    times: list[float] = field(default_factory=list)
    passed: int | None = None
    failure: str | None = None
    stragglers: int = 0

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and not self.failure else None


class RunFailed(Exception):
    """A run exited with a status other than 0, or ran past the timeout."""


def _columns(jobs: int, backends: list[str], xdist: bool, in_place: bool) -> list[Column]:
    parproc = ["-p", "no:xdist"]
    if in_place:
        # Block an installed copy (its entry point is named "parproc") and load this checkout's.
        parproc += ["-p", "no:parproc", "-p", "pytest_parproc.plugin"]
    columns = [Column("serial", "serial", ["-p", "no:parproc"])]
    if xdist:
        for mode in ("load", "worksteal"):
            flags = ["-p", "no:parproc", "-n", str(jobs), "--dist", mode]
            columns.append(Column(f"xdist {mode}", "xdist", flags))
    for backend in backends:
        if backend == "loky":
            columns.append(
                Column("parproc loky (default)", "parproc", [*parproc, f"--n-jobs={jobs}"])
            )
        else:
            flags = [*parproc, f"--n-jobs={jobs}", f"--par-backend={backend}"]
            columns.append(Column(f"parproc {backend}", "parproc", flags))
    return columns


def _child_env(in_place: bool) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _DROPPED and not name.startswith(_DROPPED_PREFIXES)
    }
    env["PYTHONHASHSEED"] = "0"
    if in_place:
        paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _command(column: Column) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *column.flags]


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _reap(group: int) -> bool:
    """Whether processes of the run's process group outlived it; kill any left after a grace."""
    deadline = time.perf_counter() + _STRAGGLER_GRACE_S
    found = False
    while True:
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return found
        found = True
        if time.perf_counter() >= deadline:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return found
        time.sleep(0.05)


def _run(
    column: Column, folder: Path, env: dict[str, str], timeout: float
) -> tuple[float, str, bool]:
    """Run one command: its wall seconds, its output, and whether processes outlived it."""
    command = _command(column)
    # Output goes to a file, not a pipe: a worker that outlives pytest would hold a pipe open
    # and stretch the measured time past the moment the user gets the prompt back.
    with tempfile.TemporaryFile(mode="w+") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # Popen.wait(timeout=...) polls, sleeping up to 50 ms between looks: the times would
        # come in steps of 50 ms. A timer kills a run past the timeout instead, and the wait
        # itself blocks until the exit.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            status: int | None = process.wait()
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - started
        if expired.is_set():
            status = None
        stragglers = _reap(process.pid)
        if status is None:
            process.wait()
        output.seek(0)
        text = output.read()
    if status != 0:
        what = f"ran past {timeout:g} s" if status is None else f"exited with {status}"
        raise RunFailed(f"{column.label} {what}: {' '.join(command)}\n{_tail(text)}")
    return elapsed, text, stragglers


def _passed(output: str) -> int | None:
    found = re.findall(r"(\d+) passed", output)
    return int(found[-1]) if found else None


def _race(
    name: str,
    columns: list[Column],
    args: argparse.Namespace,
    env: dict[str, str],
    scratch: Path,
) -> dict[str, Result]:
    folder = scratch / name
    write_suite(name, folder, args.scale)
    results = {column.label: Result() for column in columns}

    def attempt(column: Column, timed: bool, note: str) -> None:
        result = results[column.label]
        if result.failure is not None:
            return
        try:
            elapsed, output, stragglers = _run(column, folder, env, args.timeout)
        except RunFailed as error:
            if not args.keep_going:
                raise
            result.failure = str(error).splitlines()[0]
            print(f"[{name}] FAILED: {error}", file=sys.stderr, flush=True)
            return
        passed = _passed(output)
        if result.passed is None:
            result.passed = passed
        if timed:
            result.times.append(elapsed)
        if stragglers:
            result.stragglers += 1
        extra = " (processes outlived it)" if stragglers else ""
        print(
            f"[{name}] {note} {column.label}: {elapsed:.2f} s{extra}", file=sys.stderr, flush=True
        )

    for column in columns:
        attempt(column, timed=False, note="warm-up")
    for repetition in range(args.repeat):
        shift = repetition * len(columns) // args.repeat
        for column in columns[shift:] + columns[:shift]:
            attempt(column, timed=True, note=f"run {repetition + 1}/{args.repeat}")
    return results


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _machine(in_place: bool, xdist: bool) -> dict[str, Any]:
    parproc = f"checkout {ROOT} (in place)" if in_place else _version("pytest-parproc")
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "pytest": _version("pytest"),
        "pytest-xdist": _version("pytest-xdist") if xdist else "not used",
        "pytest-parproc": parproc,
    }


def _ratio(value: float | None, reference: float | None) -> str:
    return "-" if value is None or not reference else f"{value / reference:.2f}"


def _table(results: dict[str, dict[str, Result]], columns: list[Column]) -> list[str]:
    lines = [
        "| suite | command | tests | median s | min-max s | vs serial | vs best xdist |",
        "|---|---|---|---|---|---|---|",
    ]
    tools = {column.label: column.tool for column in columns}
    for suite, by_column in results.items():
        serial = by_column["serial"].median if "serial" in by_column else None
        xdist = [r.median for label, r in by_column.items() if tools[label] == "xdist"]
        known = [value for value in xdist if value is not None]
        best_xdist = min(known) if known else None
        expected = by_column["serial"].passed if "serial" in by_column else None
        for label, result in by_column.items():
            if result.failure is not None:
                lines.append(f"| {suite} | {label} | - | FAILED | - | - | - |")
                continue
            median = result.median
            if median is None:
                continue
            tests = "?" if result.passed is None else str(result.passed)
            if expected is not None and result.passed != expected:
                tests += f" (serial: {expected})"
            spread = f"{min(result.times):.2f}-{max(result.times):.2f}"
            if result.stragglers:
                spread += f" [{result.stragglers} left processes]"
            vs_serial = _ratio(median, serial) if label != "serial" else "1.00"
            vs_xdist = _ratio(median, best_xdist) if tools[label] == "parproc" else "-"
            lines.append(
                f"| {suite} | {label} | {tests} | {median:.2f} | {spread} | {vs_serial} | "
                f"{vs_xdist} |"
            )
    return lines


def _report(
    results: dict[str, dict[str, Result]],
    columns: list[Column],
    args: argparse.Namespace,
    machine: dict[str, Any],
    notes: list[str],
    elapsed: float,
) -> None:
    print(
        f"# pytest-parproc race: {args.jobs} jobs, scale {args.scale}, repeat {args.repeat}; "
        "median wall seconds of whole `python -m pytest` runs"
    )
    print(
        f"# machine: {machine['cpus']} CPUs ({machine['processor']}), {machine['platform']}, "
        f"{machine['python']}; pytest {machine['pytest']}, pytest-xdist "
        f"{machine['pytest-xdist']}, pytest-parproc {machine['pytest-parproc']}"
    )
    for column in columns:
        print(f"# {column.label}: pytest -q -p no:randomly {' '.join(column.flags)}")
    for note in notes:
        print(f"# note: {note}")
    print(
        "# 'vs best xdist': parproc median / the lower of the xdist load and worksteal "
        "medians (below 1: parproc is faster)"
    )
    print()
    for line in _table(results, columns):
        print(line)
    print()
    parproc = [column.label for column in columns if column.tool == "parproc"]
    extras = [label for label in parproc[1:] if label.startswith(f"{parproc[0]} ")]
    base_label = parproc[0] if parproc else ""
    if args.extra_base:
        base_label = f"{parproc[0]} {args.extra_base}"
    for suite, by_column in results.items():
        base = by_column.get(base_label)
        for label in extras:
            extra = by_column.get(label)
            if base is None or extra is None or label == base_label:
                continue
            if extra.median is not None and base.median:
                ratio = extra.median / base.median
                print(f"# {suite}: {label} / {base_label} = {ratio:.3f}")
    print(f"# the race took {elapsed / 60:.1f} minutes, warm-ups included")


def _write_json(
    path: Path,
    results: dict[str, dict[str, Result]],
    columns: list[Column],
    args: argparse.Namespace,
    machine: dict[str, Any],
    notes: list[str],
) -> None:
    payload = {
        "machine": machine,
        "notes": notes,
        "options": {key: value for key, value in vars(args).items() if key not in ("json",)},
        "commands": {column.label: _command(column)[1:] for column in columns},
        "suites": {
            suite: {
                label: {
                    "times": result.times,
                    "median": result.median,
                    "passed": result.passed,
                    "failure": result.failure,
                    "runs_with_left_processes": result.stragglers,
                }
                for label, result in by_column.items()
            }
            for suite, by_column in results.items()
        },
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _names(text: str, allowed: list[str], what: str, parser: argparse.ArgumentParser) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        parser.error(f"{what}: choose among {', '.join(allowed)}, got {text!r}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="workers for xdist and parproc")
    parser.add_argument("--scale", type=int, default=1, help="multiply the suites' test counts")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each command")
    parser.add_argument("--suites", default=",".join(SUITES), help="comma-separated suites")
    parser.add_argument(
        "--backends",
        default="loky,multiprocessing,threading",
        help="pytest-parproc backends; loky runs as the default (no --par-backend flag)",
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="use this checkout's plugin (PYTHONPATH and -p pytest_parproc.plugin), not an "
        "installed one",
    )
    parser.add_argument("--no-xdist", action="store_true", help="leave pytest-xdist out")
    parser.add_argument(
        "--json", type=Path, help="also write the raw times here (rewritten after each suite)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds one run may take (default 600)"
    )
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="LABEL=FLAGS",
        help="one more parproc column: the first backend with these flags (repeatable)",
    )
    parser.add_argument(
        "--extra-base",
        metavar="LABEL",
        help="the --extra column the others are compared with (default: the plain one)",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="mark a failing command FAILED and go on, instead of stopping the race",
    )
    args = parser.parse_args()
    if args.jobs < 2 or args.repeat < 1 or args.scale < 1:
        parser.error("--jobs must be at least 2, --repeat and --scale at least 1")
    suites = _names(args.suites, list(SUITES), "--suites", parser)
    backends = _names(args.backends, ["loky", "multiprocessing", "threading"], "--backends", parser)

    notes: list[str] = []
    xdist = not args.no_xdist
    if xdist and importlib.util.find_spec("xdist") is None:
        xdist = False
        notes.append("pytest-xdist is not installed: its columns are left out")
    elif not xdist:
        notes.append("--no-xdist: the xdist columns are left out")
    if args.in_place:
        notes.append(f"pytest-parproc runs in place from {ROOT}")
    columns = _columns(args.jobs, backends, xdist, args.in_place)
    base = next(column for column in columns if column.tool == "parproc")
    for extra in args.extra:
        label, equals, flags = extra.partition("=")
        if not equals or not label.strip():
            parser.error(f"--extra: expected LABEL=FLAGS, got {extra!r}")
        columns.append(
            Column(f"{base.label} {label.strip()}", "parproc", [*base.flags, *shlex.split(flags)])
        )
    env = _child_env(args.in_place)
    machine = _machine(args.in_place, xdist)

    started = time.perf_counter()
    results: dict[str, dict[str, Result]] = {}
    failure: RunFailed | None = None
    with tempfile.TemporaryDirectory(prefix="parproc-race-") as scratch:
        for name in suites:
            try:
                results[name] = _race(name, columns, args, env, Path(scratch))
            except RunFailed as error:
                failure = error
                notes.append(f"stopped at suite {name}: {str(error).splitlines()[0]}")
                break
            if args.json is not None:  # after every suite: a run cut short keeps what it has
                _write_json(args.json, results, columns, args, machine, notes)
    elapsed = time.perf_counter() - started
    if failure is not None:
        print(f"\nA run failed:\n{failure}\n", file=sys.stderr, flush=True)
    _report(results, columns, args, machine, notes, elapsed)
    if args.json is not None:
        _write_json(args.json, results, columns, args, machine, notes)
    if failure is not None:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
