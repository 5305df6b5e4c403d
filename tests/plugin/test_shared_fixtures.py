"""``@shared_fixture``: set up once per run in the main process, torn down once at its end,
on every backend; what the tests see and report is what a serial run's would."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from compare import BACKENDS, DASK, PROCESS_BACKENDS, assert_same_results, run_suite

from pytest_parproc import shared_fixture

pytest_plugins = ["pytester"]

#: A shared fixture that writes its setup and teardown (and what each test saw) to a file.
CONFTEST = """
import logging
import os
import uuid

import pytest
from pytest_parproc import shared_fixture

LOG = os.environ["SHARED_LOG"]


def log(*words):
    with open(LOG, "a") as file:
        file.write(" ".join(str(word) for word in (*words, os.getpid())) + "\\n")


def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        os.environ.setdefault("MAIN_PID", str(os.getpid()))


@shared_fixture
def server(tmp_path_factory):
    log("setup", "server")
    print("starting the server")
    logging.getLogger("server").warning("logged by the server")
    yield f"token-{uuid.uuid4().hex}"
    log("teardown", "server")


@pytest.fixture(scope="session")
def client(server):
    log("setup", "client")
    yield f"client of {server}"
    log("teardown", "client")
"""

TESTS = """
import pytest

from conftest import log


@pytest.mark.parametrize("n", range(4))
def test_uses(client, server, n):
    assert client == f"client of {server}"
    log("saw", server)


def test_other():
    pass
"""


@pytest.fixture
def log(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file the suites' fixtures write their events to."""
    path = pytester.path / "shared.log"
    monkeypatch.setenv("SHARED_LOG", str(path))
    return path


def write_suite(pytester: pytest.Pytester, modules: int = 3) -> None:
    pytester.makeconftest(CONFTEST)
    for number in range(modules):
        pytester.makepyfile(**{f"test_m{number}": TESTS})


def events(log: Path) -> list[tuple[str, ...]]:
    if not log.exists():
        return []
    return [tuple(line.split()) for line in log.read_text().splitlines()]


def assert_once_in_main(log: Path) -> int:
    """One setup and one teardown of ``server``, in one process, the teardown last of all;
    every test saw the same value. Returns that process's id."""
    found = events(log)
    setups = [event for event in found if event[:2] == ("setup", "server")]
    teardowns = [event for event in found if event[:2] == ("teardown", "server")]
    assert len(setups) == 1 and len(teardowns) == 1, found
    assert setups[0][-1] == teardowns[0][-1], found
    assert found[-1] == teardowns[0], f"a worker did something after the teardown: {found}"
    assert len({event[1] for event in found if event[0] == "saw"}) == 1, found
    return int(setups[0][-1])


@pytest.mark.slow
@pytest.mark.parametrize("n_jobs", [1, 4])
@pytest.mark.parametrize("backend", [*BACKENDS, *DASK])
def test_set_up_once_and_torn_down_once_after_every_worker(
    pytester: pytest.Pytester, log: Path, backend: str, n_jobs: int
) -> None:
    write_suite(pytester)
    serial = run_suite(pytester)
    assert_once_in_main(log)
    log.unlink()
    parallel = run_suite(pytester, n_jobs=n_jobs, backend=backend)
    assert_same_results(serial, parallel)
    main = assert_once_in_main(log)
    clients = [int(event[-1]) for event in events(log) if event[:2] == ("setup", "client")]
    if n_jobs > 1 and backend != "threading":
        assert main not in clients  # the workers' own session fixtures ran in the workers
        assert "shared" in parallel.output  # the timing table's row


@pytest.mark.slow
def test_workers_that_are_not_forks_get_the_value_pickled_once_each(
    pytester: pytest.Pytester, log: Path
) -> None:
    write_suite(pytester)
    for option in ("--par-start=collect", "--par-max-tasks-per-worker=2"):
        run = run_suite(pytester, option, n_jobs=2, backend="loky")
        assert run.exitstatus == 0, run.output
        main = assert_once_in_main(log)
        assert {int(event[-1]) for event in events(log) if event[0] == "saw"} - {main}
        log.unlink()


@pytest.mark.slow
@pytest.mark.parametrize("n_jobs", [1, 4])
@pytest.mark.parametrize("backend", [*BACKENDS, *DASK])
def test_nothing_is_set_up_when_no_selected_test_needs_it(
    pytester: pytest.Pytester, log: Path, backend: str, n_jobs: int
) -> None:
    write_suite(pytester)
    run = run_suite(pytester, "-k", "test_other", n_jobs=n_jobs, backend=backend)
    assert run.exitstatus == 0, run.output
    run = run_suite(pytester, "--collect-only", n_jobs=n_jobs, backend=backend)
    assert run.exitstatus == 0, run.output
    assert events(log) == []


FAILING = """
import pytest
from pytest_parproc import shared_fixture


@shared_fixture
def server():
    {body}
    yield 1


@pytest.mark.parametrize("n", range(3))
def test_uses(server, n):
    pass


def test_independent():
    pass
"""


@pytest.mark.slow
@pytest.mark.parametrize("n_jobs", [1, 4])
@pytest.mark.parametrize("backend", [*BACKENDS, *DASK])
@pytest.mark.parametrize(
    "body", ["raise RuntimeError('no server today')", "pytest.skip('no server here')"]
)
def test_a_failing_setup_is_reported_on_each_dependent_test_as_serially(
    pytester: pytest.Pytester, backend: str, body: str, n_jobs: int
) -> None:
    pytester.makepyfile(test_failing=FAILING.format(body=body))
    serial = run_suite(pytester)
    parallel = run_suite(pytester, n_jobs=n_jobs, backend=backend)
    assert_same_results(serial, parallel)
    assert parallel.tests["test_failing.py::test_independent"] == [
        "setup:passed",
        "call:passed",
        "teardown:passed",
    ]
    if "raise" in body:
        assert parallel.output.count("RuntimeError: no server today") >= 3, parallel.output
    # A worker that builds its own session gets the error pickled.
    collected = run_suite(pytester, "--par-start=collect", n_jobs=2, backend="loky")
    assert_same_results(serial, collected)


@pytest.mark.slow
@pytest.mark.parametrize("backend", [*PROCESS_BACKENDS, *DASK])
def test_a_crashing_test_still_tears_down_once(
    pytester: pytest.Pytester, log: Path, backend: str
) -> None:
    write_suite(pytester, modules=2)
    pytester.makepyfile(
        test_zz_crash="""
        import os, signal

        def test_crash(server):
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    run = run_suite(pytester, n_jobs=4, backend=backend)
    assert run.exitstatus == 1, run.output
    assert run.tests["test_zz_crash.py::test_crash"][0] == "setup:passed"
    assert "failed" in run.tests["test_zz_crash.py::test_crash"][1]
    assert_once_in_main(log)


@pytest.mark.slow
@pytest.mark.parametrize("n_jobs", [1, 4])
@pytest.mark.parametrize("backend", [*BACKENDS, *DASK])
def test_ctrl_c_during_the_run_still_tears_down_once(
    pytester: pytest.Pytester, log: Path, backend: str, n_jobs: int
) -> None:
    write_suite(pytester, modules=2)
    pytester.makepyfile(
        test_zz_interrupt="""
        import os, signal, time

        def test_interrupt(server):
            os.kill(int(os.environ["MAIN_PID"]), signal.SIGINT)
            for _ in range(300):  # (dask interrupts between two calls into C: README)
                time.sleep(0.1)
        """
    )
    run = run_suite(pytester, n_jobs=n_jobs, backend=backend)
    assert run.exitstatus == pytest.ExitCode.INTERRUPTED, run.output
    found = events(log)
    assert [event[:2] for event in found].count(("setup", "server")) == 1, found
    assert [event[:2] for event in found].count(("teardown", "server")) == 1, found
    after = found[[event[:2] for event in found].index(("teardown", "server")) + 1 :]
    if backend == "threading":
        # Tests running on threads then are abandoned, not stopped: one already past its
        # check may still log that it saw the value, and end its segment (the client).
        assert {event[0] for event in after} <= {"saw", "teardown"}, found
        assert ("setup", "server") not in [event[:2] for event in after], found
    else:
        assert after == [], found


TEARDOWN_ERROR = """
import pytest
from pytest_parproc import shared_fixture


@shared_fixture
def server():
    yield 1
    print("stopping the server")
    raise RuntimeError("the server would not stop")


@pytest.mark.parametrize("n", range(4))
def test_uses(server, n):
    pass
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_teardown_error_is_reported_as_serially(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(test_teardown=TEARDOWN_ERROR)
    serial = run_suite(pytester)
    parallel = run_suite(pytester, n_jobs=2, backend=backend)
    assert parallel.exitstatus == serial.exitstatus == pytest.ExitCode.TESTS_FAILED
    # One test's teardown report carries the error, in the terminal and in junitxml (which
    # test is the last to end differs between the runs).
    assert sorted(parallel.tests.values()) == sorted(serial.tests.values())
    assert len(parallel.junit) == len(serial.junit) == 4
    assert sorted(parallel.junit.values()) == sorted(serial.junit.values())
    for run in (serial, parallel):
        assert "4 passed, 1 error" in run.output, run.output
        assert "ERROR at teardown of test_uses[" in run.output, run.output
        assert "RuntimeError: the server would not stop" in run.output, run.output
        assert "stopping the server" in run.output, run.output


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_what_setup_prints_goes_to_the_first_dependent_test(
    pytester: pytest.Pytester, log: Path, backend: str
) -> None:
    write_suite(pytester, modules=2)
    for run in (run_suite(pytester, "-rA"), run_suite(pytester, "-rA", n_jobs=2, backend=backend)):
        assert run.exitstatus == 0, run.output
        assert run.output.count("starting the server") == 1, run.output
        section = run.output.split("starting the server")[0].rsplit("___ ", 1)[-1]
        assert section.startswith("test_uses["), run.output
        assert run.output.count("Captured log setup") == 1, run.output
        assert "WARNING  server:conftest.py" in run.output
        assert run.output.count("logged by the server") == 1, run.output


@pytest.mark.slow
def test_setup_show_shows_the_shared_fixture_once_marked(
    pytester: pytest.Pytester, log: Path
) -> None:
    write_suite(pytester, modules=2)
    run = run_suite(pytester, "--setup-show", n_jobs=2, backend="loky")
    assert run.exitstatus == 0, run.output
    assert len(re.findall(r"SETUP    S server .*\(shared\)", run.output)) == 1, run.output
    assert run.output.count("TEARDOWN S server (shared)") == 1, run.output


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_reached_only_through_getfixturevalue_is_an_error_with_a_hint(
    pytester: pytest.Pytester, log: Path, backend: str
) -> None:
    write_suite(pytester, modules=1)
    pytester.makepyfile(
        test_dynamic="""
        def test_dynamic(request):
            assert request.getfixturevalue("server")
        """
    )
    assert run_suite(pytester).exitstatus == 0
    # Where another test of the run requests it as an argument, it is set up, and the dynamic
    # request gets that value.
    assert run_suite(pytester, n_jobs=2, backend=backend).exitstatus == 0
    run = run_suite(pytester, "test_dynamic.py", n_jobs=2, backend=backend)
    assert run.tests["test_dynamic.py::test_dynamic"][1] == "call:failed", run.output
    assert "was not set up in the main process" in run.output
    assert "@pytest.mark.usefixtures('server')" in run.output


NARROWER = """
import pytest
from pytest_parproc import shared_fixture


@pytest.fixture(scope="session")
def per_worker():
    return 1


@shared_fixture
def inner(per_worker):
    return per_worker


@shared_fixture
def server(inner):
    return inner


def test_uses(server):
    pass
"""


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_depending_on_a_narrower_fixture_is_a_usage_error_naming_the_chain(
    pytester: pytest.Pytester, n_jobs: int | None
) -> None:
    pytester.makepyfile(test_narrower=NARROWER)
    run = run_suite(pytester, n_jobs=n_jobs)
    assert run.exitstatus == pytest.ExitCode.USAGE_ERROR, run.output
    assert "shared fixture 'inner'" in run.output
    assert "depends on 'per_worker', a session fixture" in run.output
    assert "chain: test_narrower.py::test_uses -> server -> inner -> per_worker" in run.output


OPT_IN = """
import os

import pytest


@pytest.fixture(scope="session")
def plugin_server():
    with open(os.environ["SHARED_LOG"], "a") as file:
        file.write(f"setup plugin_server {os.getpid()}\\n")
    return 1


@pytest.fixture
def per_test():
    return 1


@pytest.mark.parametrize("n", range(4))
def test_uses(plugin_server, n):
    pass
"""


@pytest.mark.slow
def test_opting_in_by_name(pytester: pytest.Pytester, log: Path) -> None:
    pytester.makepyfile(test_opt_in=OPT_IN)
    pytester.makeini("[pytest]\nparproc_shared = plugin_server\n")
    run = run_suite(pytester, n_jobs=2, backend="loky")
    assert run.exitstatus == 0, run.output
    assert len(log.read_text().splitlines()) == 1
    log.unlink()
    pytester.makeini("[pytest]\n")
    run = run_suite(pytester, "--par-shared=plugin_server", n_jobs=2, backend="loky")
    assert run.exitstatus == 0, run.output
    assert len(log.read_text().splitlines()) == 1
    for name, message in (
        ("nothing_here", "no fixture of that name exists"),
        ("per_test", "it is function scoped"),
    ):
        run = run_suite(pytester, f"--par-shared={name}", n_jobs=2, backend="loky")
        assert run.exitstatus == pytest.ExitCode.USAGE_ERROR, run.output
        assert f"option --par-shared names fixture {name!r} as shared" in run.output
        assert message in run.output


PARAMETRIZED = """
import os

import pytest
from pytest_parproc import shared_fixture


def log(*words):
    with open(os.environ["SHARED_LOG"], "a") as file:
        file.write(" ".join(map(str, words)) + "\\n")


@shared_fixture(params=["a", "b"], ids=["first", "second"])
def server(request):
    log("setup", request.param)
    yield request.param * 2
    log("teardown", request.param)


@pytest.mark.parametrize("n", range(3))
def test_uses(server, n):
    assert server in ("aa", "bb")
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_parameter_is_set_up_once(pytester: pytest.Pytester, log: Path, backend: str) -> None:
    pytester.makepyfile(test_parametrized=PARAMETRIZED)
    serial = run_suite(pytester)
    log.unlink()
    parallel = run_suite(pytester, n_jobs=2, backend=backend)
    assert_same_results(serial, parallel)
    found = log.read_text().splitlines()
    assert sorted(found[:2]) == ["setup a", "setup b"]  # both live at once (documented)
    assert sorted(found[2:]) == ["teardown a", "teardown b"]


UNPICKLABLE = """
import threading

import pytest
from pytest_parproc import shared_fixture


@shared_fixture
def lock():
    return threading.Lock()


@pytest.mark.parametrize("n", range(4))
def test_uses(lock, n):
    assert lock is not None
"""


@pytest.mark.slow
def test_an_unpicklable_value_fails_only_where_it_must_be_pickled(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_unpicklable=UNPICKLABLE)
    assert run_suite(pytester, n_jobs=2, backend="loky").exitstatus == 0
    run = run_suite(pytester, "--par-start=collect", n_jobs=2, backend="loky")
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert "shared fixture 'lock' returned a value that cannot be pickled" in run.output
    assert "return a descriptor" in run.output
    assert "_thread.lock" in run.output


HANGING = """
import time

import pytest
from pytest_parproc import shared_fixture


@shared_fixture
def server():
    time.sleep(60)
    return 1


def test_uses(server):
    pass


def test_independent():
    pass
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_a_hung_setup_is_bounded_by_par_timeout(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(test_hanging=HANGING)
    run = run_suite(pytester, "--par-timeout=1", n_jobs=2, backend=backend)
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED, run.output
    assert run.tests["test_hanging.py::test_uses"][0] == "setup:failed"
    assert run.tests["test_hanging.py::test_independent"][1] == "call:passed"
    assert "shared fixture 'server' took longer than option --par-timeout = 1 s" in run.output


def test_shared_fixture_takes_no_scope() -> None:
    with pytest.raises(TypeError, match="takes no scope"):
        shared_fixture(scope="module")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="decorates a fixture function"):
        shared_fixture(42)


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shared_server"


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_example_server_is_started_once(pytester: pytest.Pytester, backend: str) -> None:
    for path in EXAMPLE.glob("*.py"):
        pytester.makepyfile(**{path.stem: path.read_text()})
    serial = run_suite(pytester)
    parallel = run_suite(pytester, n_jobs=4, backend=backend)
    assert serial.exitstatus == 0, serial.output
    assert_same_results(serial, parallel)


#: Suites where which value a test gets depends on more than the fixture's name: each must
#: give every test the value a serial run gives it.
VALUE_CASES = {
    "a plain shared fixture on a parametrized one": {
        "conftest.py": """
            from pytest_parproc import shared_fixture

            @shared_fixture(params=["sqlite", "postgres"])
            def backend(request):
                return request.param

            @shared_fixture
            def url(backend):
                return f"{backend}://db"
            """,
        "test_p.py": """
            def test_url(backend, url):
                assert url == f"{backend}://db"
            """,
    },
    "indirect parametrizations of two tests": {
        "conftest.py": """
            from pytest_parproc import shared_fixture

            @shared_fixture
            def backend(request):
                return request.param
            """,
        "test_i.py": """
            import pytest

            @pytest.mark.parametrize("backend", ["x", "y"], indirect=True)
            def test_a(backend):
                assert backend in "xy"

            @pytest.mark.parametrize("backend", ["z"], indirect=True)
            def test_b(backend):
                assert backend == "z"
            """,
    },
    "a plain fixture overriding a shared one": {
        "conftest.py": """
            from pytest_parproc import shared_fixture

            @shared_fixture
            def srv():
                return "srv"
            """,
        "sub/conftest.py": """
            import pytest

            @pytest.fixture(scope="session")
            def srv(srv):
                return srv + "-sub"
            """,
        "sub/test_s.py": """
            def test_s1(srv):
                assert srv == "srv-sub"
            """,
        "test_top.py": """
            def test_t():
                pass
            """,
    },
    "same-named shared fixtures in two modules": {
        "test_a.py": """
            from pytest_parproc import shared_fixture

            @shared_fixture
            def data():
                return "a"

            def test_a(data):
                assert data == "a"
            """,
        "test_b.py": """
            from pytest_parproc import shared_fixture

            @shared_fixture
            def data():
                return "b"

            def test_b(data):
                assert data == "b"
            """,
    },
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [("--par-backend=loky",), ("--par-backend=threading",), ("--par-start=collect",)],
    ids=["fork", "threading", "collect"],
)
@pytest.mark.parametrize("case", sorted(VALUE_CASES))
def test_each_test_gets_the_value_a_serial_run_gives_it(
    pytester: pytest.Pytester, case: str, options: tuple[str, ...]
) -> None:
    for name, source in VALUE_CASES[case].items():
        (pytester.path / name).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / name).write_text(textwrap.dedent(source))
    serial = run_suite(pytester)
    assert serial.exitstatus == 0, serial.output
    assert_same_results(serial, run_suite(pytester, *options, n_jobs=2))
    # A worker that collects everything (selection is the main process's) finds its tests'
    # values too: the other module's same-named fixture does not confuse it.
    serial = run_suite(pytester, "-k", "test_b")
    assert_same_results(serial, run_suite(pytester, *options, "-k", "test_b", n_jobs=2))


OVERRIDE_SHARED = """
import os

from pytest_parproc import shared_fixture


@shared_fixture
def srv({argument}):
    with open(os.environ["SHARED_LOG"], "a") as file:
        file.write("setup {label}\\n")
    yield {value}
    with open(os.environ["SHARED_LOG"], "a") as file:
        file.write("teardown {label}\\n")
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_shared_fixture_overriding_a_shared_one_tears_down_first(
    pytester: pytest.Pytester, log: Path, backend: str
) -> None:
    pytester.makeconftest(OVERRIDE_SHARED.format(argument="", label="base", value='"srv"'))
    (pytester.path / "sub").mkdir()
    (pytester.path / "sub" / "conftest.py").write_text(
        OVERRIDE_SHARED.format(argument="srv", label="sub", value='srv + "-sub"')
    )
    (pytester.path / "sub" / "test_s.py").write_text(
        "def test_s(srv):\n    assert srv == 'srv-sub'\n"
    )
    pytester.makepyfile(test_top="def test_t(srv):\n    assert srv == 'srv'\n")
    for selection in ((), ("sub",)):
        serial = run_suite(pytester, *selection)
        expected = log.read_text()
        log.unlink()
        assert_same_results(serial, run_suite(pytester, *selection, n_jobs=2, backend=backend))
        assert log.read_text() == expected
        log.unlink()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_warnings_of_a_shared_setup_are_reported_as_serially(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makeconftest(
        """
        import warnings
        from pytest_parproc import shared_fixture

        @shared_fixture
        def srv():
            warnings.warn("the old api", UserWarning)
            return 1
        """
    )
    pytester.makepyfile(test_w="def test_1(srv):\n    pass\n\ndef test_2(srv):\n    pass\n")
    for run in (run_suite(pytester), run_suite(pytester, n_jobs=2, backend=backend)):
        assert "2 passed, 1 warning" in run.output, run.output
        assert "UserWarning: the old api" in run.output
    errored = run_suite(pytester, "-W", "error::UserWarning", n_jobs=2, backend=backend)
    assert errored.tests["test_w.py::test_1"][0] == "setup:failed", errored.output


NONE_VALUED = """
import os

import pytest
from pytest_parproc import shared_fixture


@shared_fixture(autouse=True)
def started():
    with open(os.environ["SHARED_LOG"], "a") as file:
        file.write(f"setup started {os.getpid()}\\n")
    yield  # (no value: the usual shape of "start it, stop it")
    with open(os.environ["SHARED_LOG"], "a") as file:
        file.write(f"teardown started {os.getpid()}\\n")


@pytest.mark.parametrize("n", range(6))
def test_n(n):
    pass
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [("--par-backend=loky",), ("--par-backend=threading",), ("--par-start=collect",)],
    ids=["fork", "threading", "collect"],
)
def test_a_shared_fixture_without_a_value_is_set_up_once(
    pytester: pytest.Pytester, log: Path, options: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_none=NONE_VALUED)
    run = run_suite(pytester, *options, n_jobs=2)
    assert run.exitstatus == 0, run.output
    found = [line.split() for line in log.read_text().splitlines()]
    assert [event[0] for event in found] == ["setup", "teardown"], found
    assert found[0][-1] == found[1][-1]


#: test_b reaches its module's ``data`` only dynamically; test_a's module has its own ``data``
DYNAMIC_OTHER_DEFINITION = {
    **VALUE_CASES["same-named shared fixtures in two modules"],
    "test_b.py": VALUE_CASES["same-named shared fixtures in two modules"]["test_b.py"].replace(
        'def test_b(data):\n                assert data == "b"',
        'def test_b(request):\n                assert request.getfixturevalue("data") == "b"',
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dynamic_request_never_gets_another_definitions_value(
    pytester: pytest.Pytester, backend: str
) -> None:
    assert "getfixturevalue" in DYNAMIC_OTHER_DEFINITION["test_b.py"]
    for name, source in DYNAMIC_OTHER_DEFINITION.items():
        (pytester.path / name).write_text(textwrap.dedent(source))
    run = run_suite(pytester, n_jobs=2, backend=backend)
    assert run.tests["test_a.py::test_a"][1] == "call:passed", run.output
    assert run.tests["test_b.py::test_b"][1] == "call:failed", run.output
    assert "shared fixture 'data' was not set up in the main process" in run.output
    assert "assert 'a' == 'b'" not in run.output


RUN_ALONE = """
import pytest
from pytest_parproc import shared_fixture


def pytest_parproc_run_alone(item):
    return "alone" if item.name == "test_z_alone" else None


@shared_fixture
def url():
    yield "u"
    raise RuntimeError("the server would not stop")
"""


@pytest.mark.slow
def test_a_teardown_error_after_tests_run_alone_is_on_the_last_of_them(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(RUN_ALONE)
    pytester.makepyfile(
        test_alone="""
        def test_1(url):
            pass

        def test_2(url):
            pass

        def test_z_alone(url):
            pass
        """
    )
    serial = run_suite(pytester)
    parallel = run_suite(pytester, n_jobs=2, backend="loky")
    assert_same_results(serial, parallel)
    assert serial.tests["test_alone.py::test_z_alone"][-1] == "teardown:failed"
