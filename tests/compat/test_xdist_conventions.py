"""pytest-xdist's worker conventions in pytest-parproc's worker processes: what plugins and
conftest files that detect an xdist worker read, with the values xdist would give."""

from __future__ import annotations

import json
import shutil
import textwrap

import pytest

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

SUITE = {
    "conftest.py": """
        import json, os, pathlib

        # What a conftest sees when it is imported (in a forked worker: in the main process).
        pathlib.Path(os.environ["RECORDS"], f"conftest-{os.getpid()}.json").write_text(
            json.dumps(os.environ.get("PYTEST_XDIST_WORKER"))
        )
    """,
    "test_seen.py": """
        import json, os, pathlib
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_record(n, request, worker_id, testrun_uid):
            workerinput = getattr(request.config, "workerinput", None)
            pathlib.Path(os.environ["RECORDS"], f"test-{n}.json").write_text(json.dumps({
                "pid": os.getpid(),
                "worker_id": worker_id,
                "testrun_uid": testrun_uid,
                "env": [os.environ.get(name) for name in (
                    "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
                    "PYTEST_XDIST_TESTRUNUID")],
                "workerinput": workerinput and {
                    key: workerinput[key] for key in ("workerid", "workercount", "testrunuid")
                },
                "workeroutput": type(getattr(request.config, "workeroutput", None)).__name__,
            }))
    """,
}


def run(pytester: pytest.Pytester, *args: str) -> tuple[list[dict[str, object]], list[object]]:
    """One run; what each test saw, and what each conftest import saw."""
    records = pytester.path / "records"
    shutil.rmtree(records, ignore_errors=True)
    records.mkdir()
    pytester.makepyfile(**{name: textwrap.dedent(text) for name, text in SUITE.items()})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECORDS", str(records))
        for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
            patch.delenv(name, raising=False)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    tests = [json.loads(path.read_text()) for path in sorted(records.glob("test-*.json"))]
    conftests = [json.loads(path.read_text()) for path in sorted(records.glob("conftest-*"))]
    assert len(tests) == 6
    return tests, conftests


@pytest.mark.parametrize("xdist", ["installed", "absent"])
@pytest.mark.parametrize("start", ["fork", "collect"])
def test_worker_processes_look_like_xdist_workers(
    pytester: pytest.Pytester, start: str, xdist: str
) -> None:
    pytest.importorskip("xdist")  # the "installed" case needs it; "absent" blocks it
    blocked = ("-p", "no:xdist") if xdist == "absent" else ()
    tests, conftests = run(pytester, "--n-jobs=2", f"--par-start={start}", *blocked)
    uids = {test["testrun_uid"] for test in tests}
    assert len(uids) == 1, "one testrun_uid for the whole run, in every worker"
    (uid,) = uids
    by_pid: dict[object, set[object]] = {}
    for test in tests:
        worker = test["worker_id"]
        assert isinstance(worker, str) and worker.startswith("gw") and worker[2:].isdigit()
        assert test["env"] == [worker, "2", uid]
        assert test["workerinput"] == {"workerid": worker, "workercount": 2, "testrunuid": uid}
        assert test["workeroutput"] == "dict"  # (plugins fill it: pytest-metadata does)
        by_pid.setdefault(test["pid"], set()).add(worker)
    assert all(len(ids) == 1 for ids in by_pid.values()), "one id per worker process"
    if start == "collect":
        # Each worker imports the conftest itself, with the variables already set.
        assert sorted(c for c in conftests if c is not None) == sorted(
            {test["worker_id"] for test in tests}
        )
    else:
        # A forked worker's conftest was imported by the main process, before any worker.
        assert conftests == [None]


@pytest.mark.parametrize(
    "args", [(), ("--n-jobs=2", "--par-backend=threading")], ids=["serial", "threading"]
)
def test_outside_worker_processes_the_fixtures_say_master(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    tests, _ = run(pytester, "-p", "no:xdist", *args)
    assert {test["worker_id"] for test in tests} == {"master"}
    assert len({test["testrun_uid"] for test in tests}) == 1
    assert all(test["workerinput"] is None for test in tests)
    assert all(test["env"] == [None, None, None] for test in tests)
