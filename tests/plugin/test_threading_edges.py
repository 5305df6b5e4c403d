"""--par-backend=threading at its edges: errors that cut a test's protocol short, teardowns that
raise, parameters that take turns, many threads creating tmp_path at once, and patchers that
hide in class decorators (each found in review or on a real suite)."""

from __future__ import annotations

import pytest
from compare import Run, assert_same_results, run_suite

pytest_plugins = ["pytester"]


def _threaded(pytester: pytest.Pytester, n_jobs: int = 4) -> tuple[Run, Run]:
    serial = run_suite(pytester, "-p", "no:cacheprovider")
    threaded = run_suite(pytester, "-p", "no:cacheprovider", n_jobs=n_jobs, backend="threading")
    return serial, threaded


@pytest.mark.slow
def test_an_error_in_a_hook_ends_the_run_as_serially(pytester: pytest.Pytester) -> None:
    # The test's protocol never reaches its teardown; the module's last test, waiting for it,
    # must not wait forever.
    pytester.makeconftest(
        """
        def pytest_runtest_makereport(item, call):
            if item.name == "test_a" and call.when == "call":
                raise RuntimeError("a plugin's bug")
        """
    )
    pytester.makepyfile(
        test_m="import time\n\ndef test_a():\n    time.sleep(0.2)\n\ndef test_b():\n    pass\n"
    )
    serial, threaded = _threaded(pytester)
    assert threaded.exitstatus == serial.exitstatus == pytest.ExitCode.INTERNAL_ERROR
    assert "a plugin's bug" in threaded.output


@pytest.mark.slow
def test_a_teardown_raising_a_base_exception(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_m="""
        import asyncio, time
        import pytest

        @pytest.fixture
        def cancelled_on_teardown():
            yield
            raise asyncio.CancelledError()

        def test_a(cancelled_on_teardown):
            time.sleep(0.2)

        def test_b():
            pass
        """
    )
    serial, threaded = _threaded(pytester)
    assert_same_results(serial, threaded)


@pytest.mark.slow
def test_pytest_exit_in_a_teardown_leaves_module_fixtures_to_running_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_m="""
        import threading
        import pytest

        STATE = {"module": "none"}
        test_b_runs = threading.Event()

        @pytest.fixture(scope="module")
        def mod():
            STATE["module"] = "up"
            yield
            STATE["module"] = "torn down"

        @pytest.fixture
        def exits_in_teardown():
            yield
            pytest.exit("bye from a teardown")

        def test_a(mod, exits_in_teardown):
            assert test_b_runs.wait(60)

        def test_b(mod):
            test_b_runs.set()
            for _ in range(50):
                assert STATE["module"] == "up", "module fixture torn down under a running test"
                threading.Event().wait(0.01)
        """
    )
    threaded = run_suite(pytester, "-p", "no:cacheprovider", n_jobs=2, backend="threading")
    assert "bye from a teardown" in threaded.output
    assert threaded.tests.get("test_m.py::test_b") == [
        "setup:passed",
        "call:passed",
        "teardown:passed",
    ]


@pytest.mark.slow
def test_indirect_parameters_of_different_tests_are_kept_apart(pytester: pytest.Pytester) -> None:
    # Both tests parametrize the module fixture with a list of one: both at index 0.
    pytester.makepyfile(
        test_m="""
        import time
        import pytest

        @pytest.fixture(scope="module")
        def db(request):
            connection = {"name": request.param, "open": True}
            yield connection
            connection["open"] = False

        @pytest.mark.parametrize("db", ["sqlite"], indirect=True)
        def test_x(db):
            time.sleep(0.3)
            assert db == {"name": "sqlite", "open": True}

        @pytest.mark.parametrize("db", ["mysql"], indirect=True)
        def test_y(db):
            assert db == {"name": "mysql", "open": True}
        """
    )
    serial, threaded = _threaded(pytester)
    assert serial.exitstatus == 0
    assert_same_results(serial, threaded)


@pytest.mark.slow
def test_a_failing_teardown_between_parameters_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_p="""
        import pytest

        @pytest.fixture(scope="session", params=["x", "y"])
        def backend(request):
            yield request.param
            if request.param == "x":
                raise RuntimeError("teardown of x fails")

        def test_a(backend):
            pass

        def test_b(backend):
            pass
        """
    )
    serial, threaded = _threaded(pytester)
    assert threaded.exitstatus == serial.exitstatus == pytest.ExitCode.TESTS_FAILED
    # A serial run reports it on the set-up of the next parameter's first test; the threads
    # report it on the teardown of the last test of "x", once the others of "x" finished.
    assert "teardown of x fails" in threaded.output
    assert threaded.tests["test_p.py::test_b[x]"][-1] == "teardown:failed"


@pytest.mark.slow
def test_many_threads_create_tmp_paths_of_one_name_prefix(pytester: pytest.Pytester) -> None:
    # pytest numbers tmp_path directories and retries a few times on a clash.
    pytester.makepyfile(
        test_t="""
        import pytest

        @pytest.mark.parametrize("n", range(120))
        def test_with_a_name_longer_than_thirty_characters_each(tmp_path, n):
            (tmp_path / "mine").write_text(str(n))
        """
    )
    threaded = run_suite(pytester, "-p", "no:cacheprovider", n_jobs=16, backend="threading")
    assert threaded.exitstatus == 0, threaded.output


@pytest.mark.slow
def test_patchers_in_class_decorators_and_class_set_up_run_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_p="""
        import os, unittest
        from unittest import mock

        @mock.patch("os.getcwd", return_value="/patched")
        class TestPatchedClass(unittest.TestCase):
            def test_a(self, patched):
                assert os.getcwd() == "/patched"

        class TestPatchInSetUpClass(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                cls.patcher = mock.patch("os.getpid", return_value=1)
                cls.patcher.start()

            @classmethod
            def tearDownClass(cls):
                cls.patcher.stop()

            def test_b(self):
                assert os.getpid() == 1

        def test_plain():
            pass
        """
    )
    threaded = run_suite(pytester, n_jobs=2, backend="threading")
    assert threaded.exitstatus == 0, threaded.output
    assert "parproc: 2 of 3 tests ran alone" in threaded.output
