"""--par-timeout under the threading backend: a test past the limit is reported failed at the
limit, in its phase, with its thread's stack; its thread is left running and the other tests go
on. Tests of the serial lane (the main thread) are stopped where they are."""

from __future__ import annotations

import textwrap

import pytest
from compare import run_suite

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # waits on purpose: tests run past their time limits

PASSED = ["setup:passed", "call:passed", "teardown:passed"]

HANGS = textwrap.dedent(
    """
    import time
    import pytest

    @pytest.fixture(scope="module")
    def slow_to_tear_down():
        yield
        time.sleep(1)  # within the limit, but not within what the hung test leaves of it

    def test_hangs(slow_to_tear_down):
        time.sleep(300)

    @pytest.mark.parametrize("n", range(6))
    def test_quick(n, slow_to_tear_down):
        time.sleep(0.05)
    """
)
OTHER_HANGS = textwrap.dedent(
    """
    import time
    import pytest

    @pytest.fixture
    def hangs_in_teardown():
        yield
        time.sleep(300)

    def test_teardown_hangs(hangs_in_teardown):
        pass

    def test_alone_hangs(monkeypatch):  # monkeypatch: the serial lane, in the main thread
        monkeypatch.setenv("SOMETHING", "1")
        time.sleep(300)
    """
)
HANGING_MODULE_FIXTURE = textwrap.dedent(
    """
    import time
    import pytest

    @pytest.fixture(scope="module")
    def never_ready():
        time.sleep(300)

    @pytest.mark.parametrize("n", range(2))
    def test_needs_it(n, never_ready):
        pass

    def test_does_not(n=0):
        pass
    """
)


def test_tests_past_the_limit_fail_in_their_phase_and_the_others_go_on(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_hangs=HANGS, test_other=OTHER_HANGS, test_fixture=HANGING_MODULE_FIXTURE
    )
    run = run_suite(pytester, "--par-timeout=3", n_jobs=2, backend="threading")
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED, run.output
    tests = run.tests
    assert tests["test_hangs.py::test_hangs"] == ["setup:passed", "call:failed", "teardown:passed"]
    assert tests["test_other.py::test_teardown_hangs"] == [
        "setup:passed",
        "call:passed",
        "teardown:failed",
    ]
    assert tests["test_other.py::test_alone_hangs"][:2] == ["setup:passed", "call:failed"]
    # The module's last test waits in its teardown for the hung one, then tears the module
    # fixture down: its waiting is not counted as its own time.
    for n in range(6):
        assert tests[f"test_hangs.py::test_quick[{n}]"] == PASSED, run.output
    for n in range(2):
        assert tests[f"test_fixture.py::test_needs_it[{n}]"][0] == "setup:failed"
    assert tests["test_fixture.py::test_does_not"] == PASSED
    assert len(run.junit) == len(tests) == 12
    output = run.output
    assert "test_hangs ran past the time limit (option --par-timeout = 3 s) on thread w" in output
    assert "A thread cannot be stopped" in output
    assert "in test_hangs" in output  # the hung thread's own frame, from its stack at the limit
    assert "in the main thread, where it runs alone (requests monkeypatch" in output
    assert "4 tests ran past the time limit (option --par-timeout = 3 s) and were left" in output


def test_tests_within_the_limit_pass_on_threads(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ok="import pytest, time\n\n@pytest.mark.parametrize('n', range(8))\n"
        "def test_ok(n, tmp_path):\n    time.sleep(0.05)\n\n"
        "def test_alone(monkeypatch):\n    monkeypatch.setenv('X', '1')\n"
    )
    result = pytester.runpytest_subprocess(
        "--n-jobs=2", "--par-backend=threading", "--par-timeout=60"
    )
    result.assert_outcomes(passed=9)
    assert "ran past the time limit" not in result.stdout.str()


def test_faulthandler_timeout_is_allowed_beside_a_thread_limit(pytester: pytest.Pytester) -> None:
    """Only process workers use faulthandler's timer for the limit."""
    pytester.makeini("[pytest]\nfaulthandler_timeout = 60\n")
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--n-jobs=2", "--par-backend=threading", "--par-timeout=30"
    )
    result.assert_outcomes(passed=2)


WAIT_FOR = textwrap.dedent(
    """
    import pathlib, time
    import pytest

    def wait_for(name):
        deadline = time.monotonic() + 60
        while not pathlib.Path(name).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    """
)


def test_a_test_that_ends_after_its_limit_leaves_the_next_groups_fixtures_alone(
    pytester: pytest.Pytester,
) -> None:
    """The group's end (the next parameter's turn) is done without the test left running, and
    not again by it when it ends late, under the tests of a later group."""
    pytester.makepyfile(
        test_groups=WAIT_FOR
        + textwrap.dedent(
            """
            @pytest.fixture(scope="session", params=[1, 2, 3])
            def res(request):
                value = {"n": request.param, "alive": True}
                yield value
                value["alive"] = False

            def test_a(res):
                if res["n"] == 3:
                    pathlib.Path("third_started").touch()
                    wait_for("left_done")
                    time.sleep(0.5)  # what test_b[1] does after it returns
                assert res["alive"], f"res {res['n']} torn down under the test"

            def test_b(res):
                if res["n"] == 1:
                    wait_for("third_started")  # past the limit
                    pathlib.Path("left_done").touch()
                assert res["alive"], f"res {res['n']} torn down under the test"
            """
        )
    )
    run = run_suite(pytester, "--par-timeout=2", n_jobs=2, backend="threading")
    assert run.tests["test_groups.py::test_b[1]"][1] == "call:failed", run.output
    for nodeid in ("test_a[1]", "test_a[2]", "test_b[2]", "test_a[3]", "test_b[3]"):
        assert run.tests[f"test_groups.py::{nodeid}"] == PASSED, run.output
    assert (pytester.path / "left_done").exists()


def test_a_test_that_ends_after_its_limit_stays_off_the_serial_lanes_capture(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_capture=WAIT_FOR
        + textwrap.dedent(
            """
            def test_left_running():
                wait_for("alone_started")  # past the limit
                print("from the test left running")

            def test_alone(monkeypatch):  # the serial lane: after the concurrent tests
                monkeypatch.setenv("X", "1")
                pathlib.Path("alone_started").touch()
                for line in range(15):
                    print("ALONE-LINE", line)
                    time.sleep(0.1)
                assert False
            """
        )
    )
    result = pytester.runpytest_subprocess(
        "--n-jobs=2", "--par-backend=threading", "--par-timeout=4", timeout=180
    )
    result.assert_outcomes(failed=2)
    section = result.stdout.str().split("Captured stdout call")[-1]
    assert [f"ALONE-LINE {line}" in section for line in range(15)] == [True] * 15, section
