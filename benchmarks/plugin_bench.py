"""Time whole pytest runs: serial pytest, pytest-xdist and pytest-parproc, side by side.

Each suite is generated in a temporary directory (or taken from ``examples/demo``). Every
repetition runs each tool once, in a rotating order, in a fresh ``python -m pytest`` process;
the table shows median wall times and the ratios. Usage::

    python benchmarks/plugin_bench.py [--jobs N] [--repeat R] [--suites tiny,sleepy,...]
                                      [--backend loky|multiprocessing|threading]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tiny(folder: Path) -> None:
    """2,000 trivial tests in 20 modules: start-up and per-test overhead."""
    for module in range(20):
        body = "".join(f"def test_{n}():\n    assert {n} >= 0\n\n" for n in range(100))
        (folder / f"test_tiny_{module}.py").write_text(body)


def _sleepy(folder: Path) -> None:
    """48 tests of 0.1 s in 8 modules: waiting, 4.8 s serially."""
    for module in range(8):
        body = "import time\n\n" + "".join(
            f"def test_{n}():\n    time.sleep(0.1)\n\n" for n in range(6)
        )
        (folder / f"test_sleepy_{module}.py").write_text(body)


def _sleep30(folder: Path) -> None:
    """30 tests of 0.2 s in 3 modules: 6 s serially (the threading backend's I/O case)."""
    for module in range(3):
        body = "import time\n\n" + "".join(
            f"def test_{n}():\n    time.sleep(0.2)\n\n" for n in range(10)
        )
        (folder / f"test_sleep30_{module}.py").write_text(body)


def _uneven(folder: Path) -> None:
    """One slow module (12 x 0.2 s) and 12 quick ones: balancing."""
    tests = "".join(f"def test_{n}():\n    time.sleep(0.2)\n\n" for n in range(12))
    slow = "import time\n\n" + tests
    (folder / "test_slow.py").write_text(slow)
    for module in range(12):
        (folder / f"test_quick_{module}.py").write_text("def test_a():\n    pass\n")


def _fixtures(folder: Path) -> None:
    """A costly session fixture (0.5 s) and module fixtures (0.1 s) over 60 tests."""
    (folder / "conftest.py").write_text(
        "import time, pytest\n\n"
        "@pytest.fixture(scope='session')\ndef costly():\n    time.sleep(0.5)\n    return 1\n\n"
        "@pytest.fixture(scope='module')\ndef per_module():\n    time.sleep(0.1)\n    return 1\n"
    )
    for module in range(6):
        body = "".join(
            f"def test_{n}(costly, per_module):\n    assert costly + per_module == 2\n\n"
            for n in range(10)
        )
        (folder / f"test_fixtures_{module}.py").write_text(body)


SUITES: dict[str, Callable[[Path], None] | Path] = {
    "tiny": _tiny,
    "sleepy": _sleepy,
    "sleep30": _sleep30,
    "uneven": _uneven,
    "fixtures": _fixtures,
    "demo": ROOT / "examples" / "demo",
}


#: Children write bytecode as users' machines do (some CI images set PYTHONDONTWRITEBYTECODE,
#: which makes every process rewrite and compile every test module again).
_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _run(folder: Path, extra: list[str]) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder), *extra]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=_ENV)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--suites", default=",".join(SUITES))
    parser.add_argument("--backend", default="loky", help="pytest-parproc's --par-backend")
    args = parser.parse_args()
    tools = {
        # pytest-parproc stays loaded but inactive (no --n-jobs): the demo suite uses its fixture.
        "serial": ["-p", "no:xdist"],
        "xdist": ["-n", str(args.jobs)],
        "parproc": ["-p", "no:xdist", f"--n-jobs={args.jobs}", f"--par-backend={args.backend}"],
    }
    print(
        f"# {args.jobs} jobs, parproc backend {args.backend}, {args.repeat} repetitions, "
        "median wall seconds of whole runs"
    )
    print("| suite | serial | xdist | parproc | parproc/serial | parproc/xdist |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.suites.split(","):
            source = SUITES[name]
            if isinstance(source, Path):
                folder = source
            else:
                folder = Path(scratch, name)
                folder.mkdir()
                source(folder)
            times: dict[str, list[float]] = {tool: [] for tool in tools}
            order = list(tools)
            _run(folder, tools["serial"])  # untimed: writes the bytecode caches
            for repetition in range(args.repeat):
                for tool in order[repetition % 3 :] + order[: repetition % 3]:
                    times[tool].append(_run(folder, tools[tool]))
                    print(f"{name} {tool}: {times[tool][-1]:.2f} s", file=sys.stderr)
            median = {tool: statistics.median(values) for tool, values in times.items()}
            print(
                f"| {name} | {median['serial']:.2f} | {median['xdist']:.2f} | "
                f"{median['parproc']:.2f} | {median['parproc'] / median['serial']:.2f} | "
                f"{median['parproc'] / median['xdist']:.2f} |"
            )


if __name__ == "__main__":
    main()
