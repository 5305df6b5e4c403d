"""Distribution: durations recorded in pytest's cache plan the next run (longest first), and
--par-dist chooses the unit of work (load, loadscope, loadfile, loadgroup)."""

from __future__ import annotations

import json
import textwrap
from collections import defaultdict

import pytest
from compare import assert_same_results, run_suite

pytest_plugins = ["pytester"]

RECORDING_CONFTEST = textwrap.dedent(
    """
    import os

    import pytest

    @pytest.fixture(autouse=True)
    def record_start(request):
        with open(os.environ["START_RECORD"], "a") as record:
            record.write(f"{os.getpid()} {request.node.nodeid}\\n")
    """
)


def starts(pytester: pytest.Pytester, *args: str) -> dict[int, list[str]]:
    """Run with --n-jobs=2; the tests each process started, in order."""
    record = pytester.path / "starts.txt"
    record.unlink(missing_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("START_RECORD", str(record))
        result = pytester.runpytest_subprocess("--n-jobs=2", "-p", "no:randomly", *args)
    assert result.ret == 0, result.stdout.str()
    by_pid: dict[int, list[str]] = defaultdict(list)
    for line in record.read_text().splitlines():
        pid, nodeid = line.split(" ", 1)
        by_pid[int(pid)].append(nodeid)
    return by_pid


def recorded_durations(pytester: pytest.Pytester) -> dict[str, float]:
    path = pytester.path / ".pytest_cache" / "v" / "parproc" / "durations"
    return dict(json.loads(path.read_text()))


@pytest.mark.slow
def test_durations_are_recorded_and_the_longest_test_goes_first_next_time(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(RECORDING_CONFTEST)
    quick = (
        "import pytest\n\n@pytest.mark.parametrize('n', range(8))\ndef test_quick(n):\n    pass\n"
    )
    pytester.makepyfile(**{f"test_a{n}_quick": quick for n in range(4)})
    pytester.makepyfile(test_z_slow="import time\n\ndef test_slow():\n    time.sleep(0.3)\n")
    first = starts(pytester)
    slow = "test_z_slow.py::test_slow"
    # Never timed: every test counts the same, the larger modules go first.
    assert all(order[0] != slow for order in first.values())
    durations = recorded_durations(pytester)
    assert len(durations) == 33
    assert durations[slow] >= 0.3
    second = starts(pytester)
    assert any(order[0] == slow for order in second.values()), second


def test_an_unreadable_durations_cache_is_ignored(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    path = pytester.path / ".pytest_cache" / "v" / "parproc" / "durations"
    path.parent.mkdir(parents=True)
    path.write_text('["not", "a", "mapping"]')
    result = pytester.runpytest_subprocess("--n-jobs=2")
    result.assert_outcomes(passed=2)
    assert len(recorded_durations(pytester)) == 2  # written anew


GROUPED = textwrap.dedent(
    """
    import pytest

    @pytest.mark.parproc_group("db")
    def test_first():
        pass

    def test_free_{n}():
        pass

    @pytest.mark.parproc_group(name="db")
    def test_second():
        pass
    """
)


@pytest.mark.slow
def test_loadgroup_runs_a_group_in_one_worker_in_order(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(RECORDING_CONFTEST)
    for n in range(3):
        pytester.makepyfile(**{f"test_g{n}": GROUPED.replace("{n}", str(n))})
    serial = run_suite(pytester)
    parallel = run_suite(pytester, "--par-dist=loadgroup", n_jobs=2)
    assert_same_results(serial, parallel)
    by_pid = starts(pytester, "--par-dist=loadgroup")
    grouped = [
        [nodeid for nodeid in order if "test_free" not in nodeid] for order in by_pid.values()
    ]
    expected = [f"test_g{n}.py::test_{which}" for n in range(3) for which in ("first", "second")]
    assert expected in grouped, by_pid


@pytest.mark.parametrize("dist", ["loadfile", "loadscope"])
def test_loadfile_and_loadscope_keep_a_module_in_one_worker(
    pytester: pytest.Pytester, dist: str
) -> None:
    pytester.makeconftest(RECORDING_CONFTEST)
    for n in range(4):
        body = (
            "import pytest\n\n@pytest.mark.parametrize('x', range(10))\ndef test_x(x):\n    pass\n"
        )
        pytester.makepyfile(**{f"test_m{n}": body})
    by_pid = starts(pytester, f"--par-dist={dist}")
    owners: dict[str, set[int]] = defaultdict(set)
    for pid, order in by_pid.items():
        for nodeid in order:
            owners[nodeid.split("::")[0]].add(pid)
    assert len(owners) == 4
    assert all(len(pids) == 1 for pids in owners.values()), owners


def test_a_group_mark_without_a_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.parproc_group\ndef test_a():\n    pass\n"
        "\ndef test_b():\n    pass\n"
    )
    result = pytester.runpytest_subprocess("--n-jobs=2", "--par-dist=loadgroup")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_a*parproc_group mark needs a group name*"])


def test_an_unknown_par_dist_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("--n-jobs=2", "--par-dist=each")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*option --par-dist*expected one of auto, load, loadscope*each*"])
