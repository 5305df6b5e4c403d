"""Run joblib's own tests of ``Parallel`` against pytest-parproc's engine.

joblib's sdist (``pip download joblib==VERSION --no-binary :all:``) ships its tests inside the
package. This script unpacks it into a temporary folder twice. One copy is left as it is; that is
joblib itself. In the other, only the public imports of ``test_parallel.py`` and
``test_config.py`` are rewritten to come from ``pytest_parproc``: ``Parallel``, ``delayed``,
``parallel_config``, ``parallel_backend``, ``register_parallel_backend``, ``effective_n_jobs`` and
``cpu_count``. That includes the scripts those tests run in subprocesses. Everything else
(``BACKENDS``, backend classes, ``joblib.test.common``) stays joblib's. The tests are never
copied into this repository.

Both copies run under pytest in subprocesses; the engine's with ``joblib_harness.py``, which
puts the engine's backend registry back after each test (as joblib's tests put back joblib's).
The script prints, for each copy, the outcome counts; then, for each test that passes on joblib
and not on the engine, why: a joblib internal it uses, or a deliberate difference
(``joblib_expected.py``, where each is named), or "unexplained". It exits with 1 if any is
unexplained. ``--json PATH`` writes every test's outcome under both. Usage::

    python benchmarks/joblib_suite.py [--version 1.6.0] [--json PATH] [-- PYTEST_ARGS...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

import joblib_expected

ROOT = Path(__file__).resolve().parents[1]
#: the names a joblib user imports, which the engine provides
PUBLIC = (
    "Parallel",
    "delayed",
    "parallel_config",
    "parallel_backend",
    "register_parallel_backend",
    "effective_n_jobs",
    "cpu_count",
)
FILES = ("joblib/test/test_parallel.py", "joblib/test/test_config.py")
#: ``from joblib import ...`` or ``from joblib.parallel import ...``, one line or parenthesized
IMPORT = re.compile(
    r"^(?P<indent>[ \t]*)from joblib(?P<module>\.parallel)? import "
    r"(?:\((?P<group>[^)]*)\)|(?P<line>[^\n(]+))",
    re.MULTILINE,
)


def rewrite(source: str) -> tuple[str, int]:
    """``source`` with the public names of each joblib import taken from pytest_parproc; the
    number of names moved."""
    moved = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal moved
        names = [
            name.strip()
            for name in (match["group"] or match["line"]).replace("\n", " ").split(",")
            if name.strip()
        ]
        public = [name for name in names if name.split(" as ")[0].strip() in PUBLIC]
        if not public:
            return match[0]
        moved += len(public)
        indent = match["indent"]
        rest = [name for name in names if name not in public]
        lines = [f"{indent}from pytest_parproc import {', '.join(public)}"]
        if rest:
            lines.append(f"{indent}from joblib{match['module'] or ''} import {', '.join(rest)}")
        return "\n".join(lines)

    return IMPORT.sub(replace, source), moved


def download(version: str, folder: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"joblib=={version}",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--quiet",
            "-d",
            str(folder),
        ],
        check=True,
    )
    (archive,) = folder.glob("joblib-*.tar.gz")
    return archive


def unpack(archive: Path, folder: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    (root,) = [path for path in folder.iterdir() if path.name.startswith("joblib-")]
    return root


def run(root: Path, junit: Path, extra: list[str]) -> dict[str, str]:
    """Run the two test files in ``root`` (joblib's own package first on the path)."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [
            str(root),
            str(ROOT),
            str(ROOT / "benchmarks"),
            *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep)),
        ]
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        *FILES,
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--color=no",
        f"--junitxml={junit}",
        *extra,
    ]
    # pytest's own output (joblib's tests log multiprocessing's debug lines) goes to a file
    # beside the report; its line of counts is shown.
    with open(junit.with_suffix(".log"), "w+") as log:
        subprocess.run(command, cwd=root, env=environment, check=False, stdout=log, stderr=log)
        log.seek(0)
        counts = [line.strip() for line in log if " passed" in line and " in " in line]
    print(f"{root.parent.name}: {counts[-1] if counts else '(no counts: see ' + log.name + ')'}")
    outcomes = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        module = (case.get("classname") or "").rsplit(".", 1)[-1]
        name = f"{module}::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                if child.tag != "skipped":
                    outcome += ": " + " ".join((child.get("message") or "").split())[:300]
        outcomes[name] = outcome
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--version", default="1.6.0")
    parser.add_argument("--json", type=Path, help="write every test's outcome here")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="joblib-suite-") as scratch:
        folder = Path(scratch)
        archive = download(args.version, folder)
        runs = {}
        for variant in ("joblib", "pytest_parproc"):
            root = unpack(archive, folder / variant)
            if variant == "pytest_parproc":
                for name in FILES:
                    path = root / name
                    text, moved = rewrite(path.read_text())
                    path.write_text(text)
                    print(f"{name}: {moved} imported names now from pytest_parproc")
            extra = ["-p", "joblib_harness"] if variant == "pytest_parproc" else []
            runs[variant] = run(root, folder / f"{variant}.xml", [*extra, *args.pytest_args])
    joblib, ours = runs["joblib"], runs["pytest_parproc"]
    for variant, outcomes in runs.items():
        counts = Counter(outcome.split(":")[0] for outcome in outcomes.values())
        print(
            f"{variant}: {len(outcomes)} tests, " + ", ".join(f"{n} {k}" for k, n in counts.items())
        )
    differ = sorted(
        name
        for name, outcome in joblib.items()
        if outcome == "passed" and ours.get(name) != "passed"
    )
    print(f"pass on joblib, not on pytest_parproc: {len(differ)}")
    kinds: dict[str, dict[str, list[str]]] = {"internal": {}, "different": {}, "unexplained": {}}
    for name in differ:
        if name not in ours:
            kind, reason = "internal", joblib_expected.NOT_COLLECTED
        else:
            kind, reason = joblib_expected.explain(name) or ("unexplained", ours[name])
        kinds[kind].setdefault(reason, []).append(name)
    titles = {
        "internal": "use a joblib internal",
        "different": "meet a deliberate difference (README: Where we differ from joblib)",
        "unexplained": "unexplained",
    }
    for kind, reasons in kinds.items():
        print(f"{sum(map(len, reasons.values()))} {titles[kind]}:")
        for reason, names in sorted(reasons.items(), key=lambda item: -len(item[1])):
            print(f"  {len(names)}: {reason}")
            for name in names:
                print(f"      {name}")
    if args.json is not None:
        args.json.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
    if kinds["unexplained"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
