"""pytest-rerunfailures beside the plugin: failed tests are rerun and every rerun reported as
serially, on every backend and start mode; its status server (a thread, where pytest-xdist is
installed) neither breaks workers that collect nor keeps workers from being forked."""

from __future__ import annotations

import pytest

pytest.importorskip(
    "pytest_rerunfailures", reason="the [plugins] extra: tox -e plugins installs it"
)

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

TESTS = """
import pytest

attempts = {}

def fail_first(name):
    attempts[name] = attempts.get(name, 0) + 1
    assert attempts[name] > 1, "first attempt fails"

@pytest.mark.flaky(reruns=2)
@pytest.mark.parametrize("n", range(3))
def test_flaky(n):
    fail_first(f"flaky{n}")

@pytest.mark.flaky(reruns=1)
def test_always_fails():
    assert False

def test_plain():
    pass
"""

MODES = {
    "loky-fork": ("--n-jobs=2", "--par-dist=load"),
    "loky-collect": ("--n-jobs=2", "--par-dist=load", "--par-start=collect"),
    "multiprocessing": ("--n-jobs=2", "--par-dist=load", "--par-backend=multiprocessing"),
    "threading": ("--n-jobs=2", "--par-backend=threading"),
}


def outcomes(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, int], list[str], str]:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rR", *args, timeout=120)
    assert result.ret == 1, result.stdout.str()  # test_always_fails
    lines = sorted(
        line for line in result.outlines if line.startswith(("RERUN ", "PASSED ", "FAILED "))
    )
    return result.parseoutcomes(), lines, result.stdout.str()


@pytest.mark.parametrize("mode", list(MODES))
def test_reruns_as_serially(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_suite=TESTS)
    serial_counts, serial_lines, _ = outcomes(pytester)
    assert serial_counts == {"passed": 4, "failed": 1, "rerun": 4}
    counts, lines, output = outcomes(pytester, *MODES[mode])
    assert (counts, lines) == (serial_counts, serial_lines)
    if mode == "threading":
        # its protocol takes pytest's setup state apart between attempts: one lane, said so
        assert (
            "parproc: the tests ran one after another in this process (pytest-rerunfailures "
            "reruns 4 of them" in output.replace("\n", " ")
        )
    elif mode == "loky-fork":
        # pytest-xdist is installed (a test dependency): the status server's thread runs, idle
        assert "start-up: workers forked after collection took over its session" in output


def test_on_threads_a_run_with_nothing_to_rerun_stays_concurrent(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--n-jobs=2", "--par-backend=threading", timeout=120
    )
    result.assert_outcomes(passed=2)
    assert "ran one after another" not in result.stdout.str()
    result.stdout.fnmatch_lines(["parproc: 0 of 2 tests ran alone*"])


def test_the_status_server_is_reached_from_workers_that_collect(pytester: pytest.Pytester) -> None:
    """A worker that collects connects to the main process's status server (the keys of
    ``workerinput`` xdist's node hook would add) and counts its failures there."""
    pytester.makepyfile(
        test_suite="""
        import pytest

        def test_connected(request):
            database = request.config.failures_db
            assert type(database).__name__ == "ClientStatusDB"
            assert set(request.config.workerinput) >= {"sock_port", "statusdb_token"}
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--n-jobs=2", "--par-start=collect", timeout=120
    )
    result.assert_outcomes(passed=1)
