"""Inside a worker: the parproc_worker_id fixture, PYTEST_PARPROC_WORKER and
PYTEST_PARPROC_WORKER_COUNT, and pytest_parproc.is_worker(); ``main`` when not distributed."""

from __future__ import annotations

import json

import pytest
from compare import PROCESS_BACKENDS, run_suite

pytest_plugins = ["pytester"]

SUITE = """
import json, os, pathlib
import pytest
import pytest_parproc

@pytest.mark.parametrize("n", range(6))
def test_where(n, parproc_worker_id, tmp_path):
    seen = {
        "fixture": parproc_worker_id,
        "env": os.environ.get("PYTEST_PARPROC_WORKER"),
        "count": os.environ.get("PYTEST_PARPROC_WORKER_COUNT"),
        "is_worker": pytest_parproc.is_worker(),
        "helper_id": pytest_parproc.worker_id(),
        "helper_count": pytest_parproc.worker_count(),
        "pid": os.getpid(),
        "tmp_path": str(tmp_path),
    }
    pathlib.Path(os.environ["SEEN"], f"{n}.json").write_text(json.dumps(seen))
"""


def _seen(pytester: pytest.Pytester) -> list[dict[str, object]]:
    folder = pytester.path / "seen"
    return [json.loads(path.read_text()) for path in sorted(folder.iterdir())]


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_in_workers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    pytester.makepyfile(test_where=SUITE)
    (pytester.path / "seen").mkdir()
    monkeypatch.setenv("SEEN", str(pytester.path / "seen"))
    run = run_suite(pytester, n_jobs=2, backend=backend)
    assert run.exitstatus == 0, run.output
    seen = _seen(pytester)
    assert len(seen) == 6
    ids_by_pid: dict[object, set[object]] = {}
    for entry in seen:
        assert entry["fixture"] == entry["env"] == entry["helper_id"]
        assert entry["fixture"] in ("w0", "w1")
        assert entry["count"] == "2" and entry["helper_count"] == 2
        assert entry["is_worker"] is True
        assert f"/{entry['fixture']}/" in str(entry["tmp_path"])  # tmp_path under its worker
        ids_by_pid.setdefault(entry["pid"], set()).add(entry["fixture"])
    assert all(len(ids) == 1 for ids in ids_by_pid.values())  # one id per process


def test_without_distribution(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_where=SUITE)
    (pytester.path / "seen").mkdir()
    monkeypatch.setenv("SEEN", str(pytester.path / "seen"))
    monkeypatch.delenv("PYTEST_PARPROC_WORKER", raising=False)
    run = run_suite(pytester)
    assert run.exitstatus == 0, run.output
    for entry in _seen(pytester):
        assert entry["fixture"] == entry["helper_id"] == "main"
        assert entry["env"] is None and entry["is_worker"] is False
        assert entry["helper_count"] == 1


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
@pytest.mark.slow
def test_tests_see_the_environment_of_a_serial_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    pytester.makepyfile(
        test_env="""
        import json, os, pathlib

        def test_env():
            environment = dict(os.environ)
            for name in ("PYTEST_CURRENT_TEST", "PARPROC_OUTCOMES", "PARPROC_EVENTS"):
                environment.pop(name, None)
            pathlib.Path(os.environ["SEEN"], os.environ.get("PYTEST_PARPROC_WORKER", "main")
                         + ".json").write_text(json.dumps(environment))

        def test_other():
            pass
        """
    )
    seen = pytester.path / "seen"
    seen.mkdir()
    monkeypatch.setenv("SEEN", str(seen))
    assert run_suite(pytester).exitstatus == 0
    serial = json.loads((seen / "main.json").read_text())
    assert run_suite(pytester, n_jobs=2, backend=backend).exitstatus == 0
    (parallel_file,) = [path for path in seen.iterdir() if path.name != "main.json"]
    parallel = json.loads(parallel_file.read_text())
    worker = parallel.pop("PYTEST_PARPROC_WORKER")
    assert worker in ("w0", "w1")
    assert parallel.pop("PYTEST_PARPROC_WORKER_COUNT") == "2"
    # pytest-xdist's variables, as an xdist worker has them (compat/xdist.py)
    assert parallel.pop("PYTEST_XDIST_WORKER") == f"g{worker}"
    assert parallel.pop("PYTEST_XDIST_WORKER_COUNT") == "2"
    assert len(parallel.pop("PYTEST_XDIST_TESTRUNUID")) == 32
    assert parallel == serial  # no OMP_NUM_THREADS and friends, no engine variables


ENGINE_SUITE = """
import os
import pytest
from pytest_parproc import Parallel, delayed


def mark():
    os.environ["INITIALIZED"] = "1"


def initialized():
    return os.environ.get("INITIALIZED")


@pytest.mark.parametrize("n", range(4))
def test_own_calls(n):
    parallel = Parallel(n_jobs=2)
    assert (parallel.backend.name, parallel.backend.nesting_level, parallel.n_jobs) == (
        "loky", 0, 2
    )
    with_initializer = Parallel(n_jobs=2, initializer=mark)
    assert with_initializer(delayed(initialized)() for _ in range(2)) == ["1", "1"]
"""


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_a_tests_own_engine_calls_are_those_of_a_serial_run(
    pytester: pytest.Pytester, backend: str
) -> None:
    """Not a worker's nested fallback (threads, no backend parameters): the top level."""
    pytester.makepyfile(test_engine_calls=ENGINE_SUITE)
    serial = run_suite(pytester)
    assert serial.exitstatus == 0, serial.output
    parallel = run_suite(pytester, n_jobs=2, backend=backend)
    assert parallel.exitstatus == 0, parallel.output
