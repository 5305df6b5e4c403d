"""--par-backend=threading: tests run at the same time in threads of one process, each with its
own function fixtures, tmp_path, captured output, log records and warnings; tests that cannot
be isolated run alone. The suite's tests meet at a barrier in groups of four, so they do run
at the same time however loaded the machine is."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from compare import Run, assert_same_results, copy_suite, run_suite, serial_run

pytest_plugins = ["pytester"]

ALONE = {
    "test_alone.py::test_monkeypatch": "requests monkeypatch",
    "test_alone.py::test_capfd": "requests capfd",
    "test_alone.py::test_recwarn": "requests recwarn",
    "test_alone.py::test_pytest_warns": "uses pytest.warns",
    "test_alone.py::test_marked": "marked parproc_serial",
    "test_alone.py::test_marked_thread_unsafe": "marked thread_unsafe",
    "test_alone.py::test_mock_patch": "uses unittest.mock.patch",
    "test_alone.py::test_listed_in_the_ini_file": "listed in the parproc_serial ini option",
}


@dataclass
class ThreadedRun:
    run: Run
    records: list[str]

    def lines(self, kind: str) -> list[str]:
        return [line.split(" ", 1)[1] for line in self.records if line.startswith(kind + " ")]


_cache: dict[tuple[str, ...], ThreadedRun] = {}


def threaded_run(pytester: pytest.Pytester, *args: str) -> ThreadedRun:
    """The threads suite with four threads, once per test session for the same arguments.
    Four tests at once throughout (``full``): its tests meet in fours, which tests handed to a
    thread together while tests run one at a time could not (``test_admission``)."""
    if args not in _cache:
        copy_suite(pytester, "threads")
        records = pytester.path / ".records"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PARPROC_TIMES", str(records))
            full = "--par-thread-concurrency=full"
            run = run_suite(pytester, full, *args, n_jobs=4, backend="threading")
        _cache[args] = ThreadedRun(run, records.read_text().splitlines())
    return _cache[args]


@pytest.mark.slow
def test_outcomes_match_a_serial_run(pytester: pytest.Pytester) -> None:
    threaded = threaded_run(pytester, "-v")
    copy_suite(pytester, "threads")
    serial = serial_run(pytester, "threads")
    assert serial.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert_same_results(serial, threaded.run)


def test_concurrent_tests_get_distinct_tmp_paths(pytester: pytest.Pytester) -> None:
    threaded = threaded_run(pytester, "-v")
    paths = [line.split(" ", 1)[1] for line in threaded.lines("tmp_path")]
    # (the five that fail on purpose run again alone, with a tmp_path of their own)
    assert "parproc: 6 failed on a thread and again alone" in threaded.run.output
    assert len(paths) == 50 + 5
    assert len(set(paths)) == 50 + 5


def test_each_test_captures_only_its_own_output_and_log(pytester: pytest.Pytester) -> None:
    # 50 tests print 1,000 lines each to stdout and stderr, meeting halfway in groups of four.
    threaded = threaded_run(pytester, "-v")
    verdicts = threaded.lines("capture")
    assert len(verdicts) == 50
    assert all(line.startswith("ok ") for line in verdicts), [
        line for line in verdicts if not line.startswith("ok ")
    ]
    output = threaded.run.output
    assert "test_prints[10] out 999" in output  # a failing test's captured stdout is shown
    assert "test_prints[11] out" not in output  # a passing test's is not


def test_assertion_messages_keep_their_detail(pytester: pytest.Pytester) -> None:
    threaded = threaded_run(pytester, "-v")
    assert "At index 2 diff: 3 != 4" in threaded.run.output


def test_each_test_has_its_own_warning_filters(pytester: pytest.Pytester) -> None:
    threaded = threaded_run(pytester, "-v")
    warned = threaded.lines("warning")
    prints = [line for line in warned if "test_prints[" in line]
    assert len(prints) == 50
    for line in prints:
        nodeid, message = line.split(" ", 1)
        assert message == nodeid.split("::")[-1] + " warns"
    assert not [line for line in warned if "quiet please" in line or "raised as an" in line]
    once = "test_warnings.py::test_shown_once_per_test shown once for test_shown_once_per_test"
    assert warned.count(once) == 1
    # catch_warnings() + simplefilter("ignore") on one thread silences only that thread
    assert not [line for line in warned if "] silenced in test" in line]
    beside = [line for line in warned if "not silenced in test" in line]
    assert sorted(beside) == [
        f"test_warnings.py::test_warns_while_others_silence_theirs[{n}] not silenced in test {n}"
        for n in range(2)
    ]


def test_serial_lane_tests_overlap_no_other_test(pytester: pytest.Pytester) -> None:
    threaded = threaded_run(pytester, "-v")
    starts = dict(line.rsplit(" ", 1) for line in threaded.lines("start"))
    ends = dict(line.rsplit(" ", 1) for line in threaded.lines("end"))
    assert set(starts) == set(ends) and len(starts) == 75
    spans = {nodeid: (int(starts[nodeid]), int(ends[nodeid])) for nodeid in starts}
    for alone in ALONE:
        begin, end = spans[alone]
        overlapping = [
            nodeid
            for nodeid, (other_begin, other_end) in spans.items()
            if nodeid != alone and other_begin < end and begin < other_end
        ]
        assert not overlapping, f"{alone} ran at the same time as {overlapping}"


@pytest.mark.slow
def test_summary_says_which_tests_ran_alone_and_why(pytester: pytest.Pytester) -> None:
    output = threaded_run(pytester, "-v").run.output
    assert "parproc: 8 of 75 tests ran alone" in output
    lines = output.splitlines()
    for nodeid, reason in ALONE.items():
        assert any(reason in line for line in lines), reason
        assert f"    {nodeid}" in lines  # listed with -v
    # the timing table: four threads, and the main thread that ran the serial lane
    rows = [line.split() for line in lines if re.match(r"\s+(w\d|main)\s+\d+\s+\d+\s", line)]
    assert sorted(row[0] for row in rows) == ["main", "w0", "w1", "w2", "w3"]
    assert sum(int(row[2]) for row in rows) == 75 + 6  # and six failures, run again alone
    assert [row[2] for row in rows if row[0] == "main"] == ["14"]  # 8 alone, 6 again alone
    assert "a test's time includes waiting for the GIL" in output  # no speed-up claimed
    quiet = threaded_run(pytester).run.output
    assert "parproc: 8 of 75 tests ran alone" in quiet
    assert "    test_alone.py::test_marked" not in quiet.splitlines()


@pytest.mark.slow
def test_unittest_subtests_are_reported_as_in_a_serial_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sub="""
        import unittest

        class T(unittest.TestCase):
            def test_sub(self):
                for i in range(3):
                    with self.subTest(i=i):
                        self.assertNotEqual(i, 1)

        def test_plain():
            pass
        """
    )
    serial = run_suite(pytester)
    threaded = run_suite(pytester, n_jobs=2, backend="threading")
    assert_same_results(serial, threaded)
    summary = [line for line in serial.output.splitlines() if " in " in line][-1]
    assert summary.split(" in ")[0] in threaded.output
    assert "1 uses unittest's subTest" in threaded.output


@pytest.mark.slow
def test_parameters_of_a_wider_fixture_take_turns_as_in_a_serial_run(
    pytester: pytest.Pytester,
) -> None:
    # A session fixture parametrized over two backends sets a global, as "with and without the
    # C speed-ups" fixtures do: the tests of one backend run together, and that backend is torn
    # down before the next one is set up, as in a serial run.
    pytester.makeconftest(
        """
        import os
        import pytest

        ACTIVE = []

        def record(event):
            with open(os.environ["PARPROC_EVENTS"], "a") as events:
                events.write(f"{event} {os.getpid()}\\n")

        @pytest.fixture(scope="session", params=["a", "b"], autouse=True)
        def backend(request):
            record(f"setup backend:{request.param}")
            ACTIVE.append(request.param)
            yield request.param
            ACTIVE.remove(request.param)
            record(f"teardown backend:{request.param}")
        """
    )
    test = "from conftest import ACTIVE\n\ndef test_{0}(backend):\n    assert ACTIVE == [backend]\n"
    pytester.makepyfile(test_one="".join(test.format(n) for n in range(4)))
    pytester.makepyfile(test_two="".join(test.format(n) for n in range(4, 8)))
    serial = run_suite(pytester)
    threaded = run_suite(pytester, n_jobs=4, backend="threading")
    assert serial.exitstatus == 0
    assert_same_results(serial, threaded)
    order = [event for event, _ in threaded.events]
    assert (
        order
        == [event for event, _ in serial.events]
        == [
            "setup backend:a",
            "teardown backend:a",
            "setup backend:b",
            "teardown backend:b",
        ]
    )


def test_setup_show_runs_the_tests_in_this_process(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    run = run_suite(pytester, "--setup-show", n_jobs=2, backend="threading")
    assert run.exitstatus == 0
    assert "parproc: tests run in this process (--setup-show" in run.output


@pytest.mark.slow
def test_no_new_test_starts_after_a_failure_with_x(pytester: pytest.Pytester) -> None:
    # test_fails fails once test_waits runs, which holds the other thread until the failure is
    # counted; the tests queued after them never start.
    pytester.makepyfile(
        test_stop="""
        import threading, time

        started = threading.Event()

        def test_fails():
            assert started.wait(120), "test_waits never started"
            assert False

        def test_waits(request):
            started.set()
            deadline = time.monotonic() + 120
            while not request.session.shouldfail:
                assert time.monotonic() < deadline, "the run never stopped"
                time.sleep(0.01)

        def test_after_one():
            pass

        def test_after_two():
            pass
        """
    )
    run = run_suite(pytester, "-x", n_jobs=2, backend="threading")
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert "stopping after 1 failures" in run.output
    assert set(run.tests) == {"test_stop.py::test_fails", "test_stop.py::test_waits"}


@pytest.mark.slow
def test_pytest_exit_in_a_thread(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_exit="""
        import pytest

        def test_exits():
            pytest.exit("leaving now", returncode=7)

        def test_never(request):
            pass
        """
    )
    serial = run_suite(pytester, "-p", "no:cacheprovider")
    threaded = run_suite(pytester, "-p", "no:cacheprovider", n_jobs=2, backend="threading")
    assert serial.exitstatus == threaded.exitstatus == 7
    assert "leaving now" in threaded.output
    assert threaded.tests["test_exit.py::test_exits"] == serial.tests["test_exit.py::test_exits"]


def test_worker_identity_in_threads(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ids="""
        import pytest
        import pytest_parproc

        @pytest.mark.parametrize("n", range(4))
        def test_id(n, parproc_worker_id):
            assert pytest_parproc.is_worker()
            assert pytest_parproc.worker_id() in {"w0", "w1"}
            assert pytest_parproc.worker_count() == 2
            assert parproc_worker_id == "main"  # session fixtures are shared by the threads
        """
    )
    run = run_suite(pytester, n_jobs=2, backend="threading")
    assert run.exitstatus == 0, run.output


def test_ast_parse_is_serialized_while_tests_run_in_threads() -> None:
    # CPython 3.11 fails two threads building ASTs at once (gh-106905); pytest parses source
    # to format a failure, on the failing test's thread.
    import ast
    import threading

    from pytest_parproc.plugin.threads.isolation import serialize_ast_parse

    original = ast.parse
    inside, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def held_parse(source: str) -> ast.Module:
        calls.append(source)
        if source == "first":
            inside.set()
            assert release.wait(60)
        return original("x = 1")

    ast.parse = held_parse  # type: ignore[assignment]
    restore = serialize_ast_parse()
    try:
        first = threading.Thread(target=ast.parse, args=("first",))
        second = threading.Thread(target=ast.parse, args=("second",))
        first.start()
        assert inside.wait(60)
        second.start()
        second.join(0.2)
        assert second.is_alive() and calls == ["first"]  # waits while the first one parses
        release.set()
        first.join()
        second.join()
        assert calls == ["first", "second"]
    finally:
        release.set()
        restore()
        ast.parse = original
