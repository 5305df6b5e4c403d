"""Race serial pytest against pytest-parproc on real projects' own test suites.

Each suite is a PyPI sdist at a pinned version, unpacked under ``--cache``, with its own venv: the
project installed from the sdist (non-editable; the flat-layout pyparsing, pygments and babel
test the sdist's copy, as their tox runs do), its pinned test requirements, this interpreter's
pytest and pytest-xdist versions, and pytest-parproc built from this checkout, reinstalled on
every run of this script (the rest is made once and reused). Usage::

    python benchmarks/real_suites.py --setup-only        # download, unpack, install (~2 min)
    python benchmarks/real_suites.py --check             # one serial + one parproc run each
    python benchmarks/real_suites.py [--rounds 3] [--jobs 2] [--suites packaging,click|all]
                                     [--par-args "--par-backend=threading"]... [--xdist] [--json P]

Each run is ``python -m pytest -q -p no:randomly PATHS EXTRA`` in the sdist's folder, with
``PYTHONHASHSEED=0``, without ``PYTHONDONTWRITEBYTECODE`` and ``PYTEST_ADDOPTS``, loading only its
column's tool: serial ``-p no:parproc -p no:xdist``, parproc ``-p no:xdist --n-jobs=N`` (plus
``--par-args``), xdist ``-p no:parproc -n N``. A race runs each column once untimed (bytecode, and
the durations pytest-parproc keeps in ``.pytest_cache``), then ``--rounds`` rounds of each column
once, the order rotated; the table has the medians of the wall time from start to exit. Each run
writes ``--junitxml``: the outcome of each test id (passed/failed/error/skipped; xfail counts as
skipped) and the exit status are compared with the serial run of the same round, and any
difference makes the exit status 1. ``--check`` (``--rounds 0``) runs each column once, no warm-up.

Caveat: the reference machine is a shared 2-core VM whose load moves absolute times (the serial
times below moved by 20% between runs): quote the ratios, and race on a quiet machine. A 3-round
race of the default suites takes about 20 minutes.

Suites (tests, serial seconds on that VM; networkx and pytest only if named, or with
``--suites all``):

* packaging: 64,207 tiny tests, ~50 s: the per-test cost of distributing and replaying reports;
* click: 2,459 short tests, ~8 s (its addopts deselect 31,000 stress tests): ``CliRunner``, I/O;
* jinja2: 909 tests, ~2.5 s: a short suite, where start-up and collection dominate;
* attrs: 1,385 tests, ~10 s: hypothesis-driven, uneven durations, ``--import-mode=importlib``;
* pyparsing: 2,094 tests, ~53 s: big unittest classes, tests of up to 5 s. ORDER-DEPENDENT: its
  ``TestNN_*`` classes set global parser state for those after them; a plan that splits them can
  change outcomes (examples/tiny/tests fail after Test02_WithoutPackrat alone, serially too);
* pygments: 5,346 tests, ~19 s: mostly custom non-Python items (golden-file lexer tests);
* babel: 8,294 tests, ~19 s: the package's doctests, and tests that load the CLDR locale data;
* networkx (optional): 6,848 tests, ~115-140 s: a large scientific suite, with numpy and scipy.
* pytest (optional): 4,775 tests, ~250 s: pytest's own ``testing/``, most of it pytest run
  in-process through ``pytester`` (capture, warnings, tmp paths, legacy ``tmpdir``, plugins).
  Its sdist is pytest itself: the venv's pytest is the sdist's, at this interpreter's version.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = f"py{sys.version_info.major}.{sys.version_info.minor}"
MAX_SHOWN = 20


@dataclass(frozen=True)
class Suite:
    """One project's test suite; the strings are split on whitespace."""

    dist: str
    version: str
    requires: str  # test requirements, beside the project itself
    paths: str  # relative to the unpacked sdist
    extra: str = ""  # more pytest arguments (deselections, each with its reason)
    default: bool = True


# Test requirements from each sdist, pinned as resolved on 2026-12-04 (no coverage, pytest-cov or
# pytest-randomly).
# fmt: off
SUITES: dict[str, Suite] = {
    # pyproject [dependency-groups] test.
    "packaging": Suite("packaging", "26.4",
                       "hypothesis==6.170.27 pip>=21.1 pretend==1.0.9 tomli_w==1.2.0", "tests"),
    # [dependency-groups] tests: pytest alone. Its addopts deselect 31,000 "stress" tests.
    "click": Suite("click", "8.5.1", "", "tests"),
    # requirements/tests.in.
    "jinja2": Suite("jinja2", "3.1.6", "trio==0.35.0", "tests"),
    # [dependency-groups] tests. Deselected: fails on CPython 3.11.7 serially and alone, whatever
    # the runner (the pipe converter's return annotation is None, bool expected).
    "attrs": Suite("attrs", "26.1.0", "cloudpickle==3.1.3 hypothesis==6.170.27 Pympler==1.1",
                   "tests", "--deselect tests/test_converters.py"
                   "::TestPipe::test_wrapped_annotation"),
    # tox.ini "unit": the "diagrams" extra; matplotlib left out (its 2 tests skip without it).
    "pyparsing": Suite("pyparsing", "3.3.3", "railroad-diagrams==3.0.1 jinja2==3.1.6",
                       "tests examples/tiny/tests"),
    # tox.ini: wcag-contrast-ratio.
    "pygments": Suite("pygments", "2.21.0", "wcag-contrast-ratio==0.9", "tests"),
    # Extra "dev"; the sdist ships the CLDR data; the package's doctests are in babel/.
    "babel": Suite("babel", "2.19.0",
                   "freezegun==1.5.5 jinja2==3.1.6 pytz==2026.6 setuptools==65.5.0", "tests babel"),
    # Extra "default" less matplotlib and pandas (their tests skip without them).
    "networkx": Suite("networkx", "3.6.1", "numpy==2.4.6 scipy==1.17.1", "networkx", default=False),
    # pyproject extra "dev" (asynctest only below 3.11; pytest-xdist is pinned for every suite).
    # -p no:cacheprovider as its tox runs; its pyproject adds -p pytester.
    "pytest": Suite("pytest", "9.2.0",
                    "argcomplete==3.7.2 attrs==26.1.0 coverage==7.18.0 hypothesis==6.170.27 "
                    "mock==5.2.0 numpy==2.4.6 pexpect==4.9.0 PyYAML==6.0.4 requests==2.34.2 "
                    "setuptools==84.2.1 xmlschema==4.3.2", "testing", "-p no:cacheprovider",
                    default=False),
}
# fmt: on


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sh(command: list[str]) -> None:
    log("$ " + " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        log(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}")


def build_wheel(cache: Path) -> Path:
    """A wheel of this checkout, built from a copy so that nothing is written into it."""
    out = cache / "wheel"
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "src"
        skip = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__")
        shutil.copytree(ROOT, copy, ignore=skip)
        sh([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(copy)])
    return next(out.glob("pytest_parproc-*.whl"))


def setup(name: str, suite: Suite, cache: Path, wheel: Path) -> tuple[Path, Path]:
    """Download, unpack and install one suite (once); reinstall pytest-parproc. (folder, python)"""
    tag = f"{suite.dist}-{suite.version}"
    download = cache / "sdist" / tag
    if not any(download.glob("*.tar.gz")):
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
        sh([*pip, "-d", str(download), f"{suite.dist}=={suite.version}"])
    folder = cache / "src" / tag
    if not folder.is_dir():
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            shutil.unpack_archive(next(download.glob("*.tar.gz")), scratch, filter="data")
            folder.parent.mkdir(parents=True, exist_ok=True)
            next(Path(scratch).iterdir()).rename(folder)  # the sdist's one top folder
    venv = cache / "venv" / f"{tag}-{PY}"
    python = venv / "bin" / "python"
    # pytest and pytest-xdist at this interpreter's versions (it must have pytest).
    pins = [f"pytest=={importlib.metadata.version('pytest')}", "pytest-xdist"]
    if importlib.util.find_spec("xdist"):
        pins[1] += f"=={importlib.metadata.version('pytest-xdist')}"
    wanted = [str(folder), *suite.requires.split(), *pins]
    stamp = venv / "parproc-real-suites.json"
    if not stamp.is_file() or json.loads(stamp.read_text()) != wanted:
        shutil.rmtree(venv, ignore_errors=True)
        sh([sys.executable, "-m", "venv", str(venv)])
        sh([str(python), "-m", "pip", "install", "-q", "--no-cache-dir", *wanted, str(wheel)])
        stamp.write_text(json.dumps(wanted))
    else:
        log(f"[{name}] reusing {venv}")
    sh([str(python), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(wheel)])
    return folder, python


@dataclass
class Column:
    label: str
    flags: list[str]
    warm: dict[str, float] = field(default_factory=dict)  # suite -> the warm-up run's time
    times: dict[str, list[float]] = field(default_factory=dict)  # suite -> timed runs
    exits: dict[str, list[int]] = field(default_factory=dict)
    diffs: dict[str, list[str]] = field(default_factory=dict)


def outcomes(junit: Path) -> dict[str, str]:
    """Test id (classname::name) -> outcome; an id seen twice keeps all its outcomes, sorted."""
    found: dict[str, list[str]] = {}
    if junit.is_file() and junit.stat().st_size:
        for case in ET.parse(junit).getroot().iter("testcase"):
            tags = sorted({c.tag for c in case} & {"failure", "error", "skipped"})
            test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
            found.setdefault(test_id, []).append("+".join(tags).replace("failure", "failed"))
    return {k: ",".join(sorted(o or "passed" for o in v)) for k, v in found.items()}


def child_env() -> dict[str, str]:
    dropped = ("PYTHONDONTWRITEBYTECODE", "PYTEST_ADDOPTS", "PYTEST_PARPROC_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return {**env, "PYTHONHASHSEED": "0"}


def run_once(
    python: Path, folder: Path, suite: Suite, column: Column, timeout: float
) -> tuple[float, int, dict[str, str]]:
    """Wall seconds, exit status and outcomes of one ``python -m pytest`` run."""
    with tempfile.TemporaryDirectory() as scratch:
        junit = Path(scratch) / "junit.xml"
        command = [str(python), "-m", "pytest", "-q", "-p", "no:randomly", *suite.paths.split()]
        command += [*suite.extra.split(), *column.flags, f"--junitxml={junit}"]
        # Output to a file: a worker that outlived pytest would hold a pipe and stretch the time.
        with open(Path(scratch) / "out.txt", "w+") as out:
            started = time.perf_counter()
            process = subprocess.Popen(
                command, cwd=folder, env=child_env(), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            try:
                status = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                status = -1  # reported as exit -1; the group is killed below
            elapsed = time.perf_counter() - started
            reap(process.pid, column.label)
            process.wait()
            out.seek(0)
            tail = out.read().rstrip().splitlines()[-1:] or [""]
        log(f"  {column.label}: {elapsed:.2f} s, exit {status}: {tail[0][:150]}")
        return elapsed, status, outcomes(junit)


def reap(group: int, label: str) -> None:
    """Give processes left in the run's group 2 s to leave, then kill them (and say so)."""
    deadline = time.perf_counter() + 2.0
    try:
        while time.perf_counter() < deadline:
            os.killpg(group, 0)
            time.sleep(0.05)
        os.killpg(group, signal.SIGKILL)
        log(f"  ({label}: processes outlived the run by 2 s; killed)")
    except ProcessLookupError:
        pass


def compare(serial: dict[str, str], other: dict[str, str], label: str) -> list[str]:
    missing = "(not run)"
    return [
        f"{test_id}: serial {serial.get(test_id, missing)}, {label} {other.get(test_id, missing)}"
        for test_id in sorted(serial.keys() | other.keys())
        if serial.get(test_id) != other.get(test_id)
    ]


def race(
    name: str, folder: Path, python: Path, columns: list[Column], args: argparse.Namespace
) -> int:
    """Runs the suite's rounds; returns its test count (the serial run's first)."""
    suite, tests = SUITES[name], 0
    for column in columns:
        column.times[name], column.exits[name], column.diffs[name] = [], [], []
    if args.rounds:
        log(f"[{name}] warm-up")
        for column in columns:
            column.warm[name] = run_once(python, folder, suite, column, args.timeout)[0]
    for index in range(max(args.rounds, 1)):
        log(f"[{name}] {'check' if not args.rounds else f'round {index + 1}/{args.rounds}'}")
        shift = index % len(columns)
        results: dict[str, tuple[int, dict[str, str]]] = {}
        for column in columns[shift:] + columns[:shift]:
            elapsed, status, found = run_once(python, folder, suite, column, args.timeout)
            column.times[name].append(elapsed)
            column.exits[name].append(status)
            results[column.label] = (status, found)
        serial_status, serial = results["serial"]
        tests = tests or len(serial)
        for column in columns[1:]:
            status, found = results[column.label]
            diffs = compare(serial, found, column.label)
            if status != serial_status:
                diffs.insert(0, f"exit status: serial {serial_status}, {column.label} {status}")
            column.diffs[name] += [f"round {index + 1}: {d}" for d in diffs]
    return tests


def times(values: list[float]) -> list[str]:
    """Table cells: the serial time, then each other column's time and its ratio to serial."""
    return [f"{values[0]:.2f}", *(f"{v:.2f} | {v / values[0]:.2f}" for v in values[1:])]


def report(names: list[str], tests: dict[str, int], columns: list[Column]) -> bool:
    """Print the markdown table and the differences; whether any difference was found."""
    head = ["suite", "tests", "serial s"]
    for column in columns[1:]:
        head += [f"{column.label} s", f"{column.label}/serial"]
    print("| " + " | ".join([*head, "outcome differences"]) + " |")
    print("|" + "---|" * (len(head) + 1))
    sums = [0.0] * len(columns)
    differ = []
    for name in names:
        medians = [statistics.median(c.times[name]) for c in columns]
        sums = [a + b for a, b in zip(sums, medians, strict=True)]
        diffs = [d for c in columns[1:] for d in c.diffs[name]]
        if diffs:
            differ.append(f"\n{name}: {len(diffs)} differences (the first {MAX_SHOWN} shown)")
            differ += [f"- {d}" for d in diffs[:MAX_SHOWN]]
        found = str(len(diffs))
        if any(columns[0].exits[name]):  # the same in the other columns, or counted as a diff
            found += f" (serial exit {', '.join(map(str, columns[0].exits[name]))})"
        cells = [f"{name} {SUITES[name].version}", f"{tests[name]:,}", *times(medians), found]
        print("| " + " | ".join(cells) + " |")
    print("| " + " | ".join(["**total**", f"{sum(tests.values()):,}", *times(sums), ""]) + " |")
    print("\n".join(differ))
    return bool(differ)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--cache", type=Path, default=Path("~/.cache/parproc-real-suites"))
    add("--suites", help="comma-separated names, or all (default: all but networkx and pytest)")
    add("--rounds", type=int, default=3, help="timed rounds after one warm-up run (default 3)")
    add("--check", action="store_true", help="--rounds 0: each column runs once, compared")
    add("--setup-only", action="store_true", help="download and install, run no test")
    add("--jobs", type=int, default=2, help="--n-jobs and -n (default 2)")
    add(
        "--par-args",
        action="append",
        help='more parproc flags, e.g. "--par-backend=threading"; each one more parproc column',
    )
    add("--xdist", action="store_true", help="add a pytest-xdist -n N column")
    add("--json", type=Path, help="write all raw times, exit statuses and differences here")
    add("--timeout", type=float, default=900.0, help="seconds a run may take (default 900)")
    argv = sys.argv[1:]  # "--par-args --x" would read "--x" as an option: glue the two
    while "--par-args" in argv[:-1]:
        at = argv.index("--par-args")
        argv[at : at + 2] = [f"--par-args={argv[at + 1]}"]
    args = parser.parse_args(argv)
    if args.check:
        args.rounds = 0
    if args.suites in (None, "all"):
        names = [n for n, s in SUITES.items() if s.default or args.suites == "all"]
    else:
        names = [n.strip() for n in args.suites.split(",") if n.strip()]
    if unknown := [n for n in names if n not in SUITES]:
        parser.error(f"unknown suites {unknown}; choose among {', '.join(SUITES)}")
    cache = args.cache.expanduser().resolve()
    cache.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(cache)
    places = {name: setup(name, SUITES[name], cache, wheel) for name in names}
    if args.setup_only:
        return
    columns = [Column("serial", ["-p", "no:parproc", "-p", "no:xdist"])]
    variants = args.par_args or [""]
    for extra in variants:
        label = "parproc" if len(variants) == 1 else f"parproc {extra}".strip()
        par = ["-p", "no:xdist", f"--n-jobs={args.jobs}", *shlex.split(extra)]
        columns.append(Column(label, par))
    columns += [Column("xdist", ["-p", "no:parproc", "-n", str(args.jobs)])] if args.xdist else []
    tests = {name: race(name, *places[name], columns, args) for name in names}
    mode = "check: one run each" if not args.rounds else f"medians of {args.rounds} rounds"
    print(f"# real suites, {mode}, --jobs {args.jobs}; {os.cpu_count()} CPUs, {PY}")
    for column in columns:
        print(f"# {column.label}: pytest -q -p no:randomly PATHS EXTRA {shlex.join(column.flags)}")
    print()
    differ = report(names, tests, columns)
    if args.json:
        raw = {
            "machine": f"{os.cpu_count()} CPUs, {platform.platform()}, {sys.version.split()[0]}",
            "options": {k: str(v) for k, v in vars(args).items()},
            "suites": {n: {**asdict(SUITES[n]), "tests": tests[n]} for n in names},
            "columns": [asdict(column) for column in columns],  # per suite: runs in round order
        }
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    raise SystemExit(1 if differ else 0)


if __name__ == "__main__":
    main()
