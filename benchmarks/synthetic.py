"""Generate synthetic pytest suites, each of which stresses one cost of a parallel run.

``trivial``   2,000 near-empty parametrized cases in 20 modules: start-up and per-test overhead.
``cpu``       48 tests of ~0.1 s of pure-Python work in 8 modules: CPU-bound throughput.
``sleep``     30 tests of ``time.sleep(0.2)`` in 3 modules: waiting (the I/O-bound case).
``skewed``    190 tests of ~1 ms, then 10 tests of ~0.1 s collected last: load balancing.
``fixtures``  a 1 s session fixture and 10 modules with a 0.3 s module fixture each: set-up cost.
``collect``   100 modules that take ~30 ms of CPU to import, 50 cases each: collection cost.

``--scale K`` multiplies the counts (modules, or tests where a suite has one module). Every
suite gets a bare ``pytest.ini`` so that the folder is pytest's rootdir. Usage::

    python benchmarks/synthetic.py NAME FOLDER [--scale K]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

#: Iterations of ``total += i * i % 7`` that take about 0.1 s on one core of the 2-core AMD
#: EPYC development machine (CPython 3.11, calibrated once by hand: 800,000 took 0.093 s).
CPU_LOOPS = 860_000

#: Marks the folder as pytest's rootdir; it sets nothing that changes how tests run.
PYTEST_INI = "[pytest]\n"


def _write_modules(folder: Path, prefix: str, count: int, body: str) -> None:
    for module in range(count):
        (folder / _name(prefix, module, count)).write_text(body)


def _name(prefix: str, index: int, count: int) -> str:
    """``prefix`` and a zero-padded index, so that file order is collection order."""
    width = max(2, len(str(count - 1)))
    return f"{prefix}{index:0{width}d}.py"


def _trivial(folder: Path, scale: int) -> None:
    """20 modules (x scale) of 100 parametrized cases that only compare a number."""
    body = (
        "import pytest\n\n\n"
        '@pytest.mark.parametrize("n", range(100))\n'
        "def test_trivial(n):\n"
        "    assert n >= 0\n"
    )
    _write_modules(folder, "test_trivial_", 20 * scale, body)


def _cpu(folder: Path, scale: int) -> None:
    """8 modules (x scale) of 6 tests, each running the same fixed arithmetic loop."""
    tests = "".join(f"\n\ndef test_cpu_{n}():\n    assert _work() > 0\n" for n in range(6))
    body = (
        f"LOOPS = {CPU_LOOPS}\n\n\n"
        "def _work():\n"
        "    total = 0\n"
        "    for i in range(LOOPS):\n"
        "        total += i * i % 7\n"
        "    return total\n" + tests
    )
    _write_modules(folder, "test_cpu_", 8 * scale, body)


def _sleep(folder: Path, scale: int) -> None:
    """3 modules (x scale) of 10 tests that each sleep 0.2 s."""
    tests = "".join(f"\n\ndef test_sleep_{n}():\n    time.sleep(0.2)\n" for n in range(10))
    body = "import time\n" + tests
    _write_modules(folder, "test_sleep_", 3 * scale, body)


def _skewed(folder: Path, scale: int) -> None:
    """19 modules (x scale) of 10 tests of 1 ms, then ``test_z_long.py``: 10 (x scale) of 0.1 s.

    The long tests come last in collection order, so a scheduler that hands tests out in
    that order finishes with a few workers busy and the rest idle; one that knows the
    durations of the previous run can start the long tests first."""
    short = "import time\n" + "".join(
        f"\n\ndef test_short_{n}():\n    time.sleep(0.001)\n" for n in range(10)
    )
    _write_modules(folder, "test_a_", 19 * scale, short)
    long = "import time\n" + "".join(
        f"\n\ndef test_long_{n}():\n    time.sleep(0.1)\n" for n in range(10 * scale)
    )
    (folder / "test_z_long.py").write_text(long)


def _fixtures(folder: Path, scale: int) -> None:
    """An autouse 1 s session fixture; 10 modules (x scale), each with a 0.3 s module fixture
    used by its 10 quick tests."""
    (folder / "conftest.py").write_text(
        "import time\n\n"
        "import pytest\n\n\n"
        '@pytest.fixture(scope="session", autouse=True)\n'
        "def costly_session():\n"
        "    time.sleep(1.0)\n"
        "    return 1\n"
    )
    tests = "".join(
        f"\n\ndef test_fixture_{n}(module_resource):\n    assert module_resource == 1\n"
        for n in range(10)
    )
    body = (
        "import time\n\n"
        "import pytest\n\n\n"
        '@pytest.fixture(scope="module")\n'
        "def module_resource():\n"
        "    time.sleep(0.3)\n"
        "    return 1\n" + tests
    )
    _write_modules(folder, "test_fixtures_", 10 * scale, body)


def _collect(folder: Path, scale: int) -> None:
    """100 modules (x scale) that spin the CPU for 30 ms when imported, 50 cases each."""
    body = (
        "import time\n\n"
        "import pytest\n\n"
        "# Stands in for a costly import (a big dependency, module-level set-up): CPU time.\n"
        "_deadline = time.perf_counter() + 0.03\n"
        "while time.perf_counter() < _deadline:\n"
        "    pass\n\n\n"
        '@pytest.mark.parametrize("case", range(50))\n'
        "def test_collect(case):\n"
        "    assert case >= 0\n"
    )
    _write_modules(folder, "test_collect_", 100 * scale, body)


SUITES: dict[str, Callable[[Path, int], None]] = {
    "trivial": _trivial,
    "cpu": _cpu,
    "sleep": _sleep,
    "skewed": _skewed,
    "fixtures": _fixtures,
    "collect": _collect,
}


#: Seconds of session-scoped set-up that every worker of a parallel run pays again (a session
#: fixture runs once per worker process): ``bound.py`` counts it once per worker.
PER_WORKER_SETUP_S: dict[str, float] = {name: 0.0 for name in SUITES} | {"fixtures": 1.0}


def write_suite(name: str, folder: Path, scale: int = 1) -> None:
    """Write suite ``name`` into ``folder`` (created; it must not hold files already), with
    its test counts multiplied by ``scale``."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}: choose one of {', '.join(SUITES)}")
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: give a new or empty folder")
    (folder / "pytest.ini").write_text(PYTEST_INI)
    SUITES[name](folder, scale)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog=f"suites: {', '.join(SUITES)}",
    )
    parser.add_argument("name", help="which suite to write")
    parser.add_argument("folder", type=Path, help="where to write it (created; must be empty)")
    parser.add_argument("--scale", type=int, default=1, help="multiply the test counts by K")
    args = parser.parse_args()
    try:
        write_suite(args.name, args.folder, args.scale)
    except (ValueError, FileExistsError) as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
