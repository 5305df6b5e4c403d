"""--n-jobs / --par-backend / --par-max-worker-restart: command line, then environment, then
ini file, then default; bad values are usage errors that say where they came from."""

from __future__ import annotations

import pytest

from pytest_parproc import cpu_count

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PYTEST_PARPROC_N_JOBS",
        "PYTEST_PARPROC_BACKEND",
        "PYTEST_PARPROC_MAX_WORKER_RESTART",
        "PYTEST_ADDOPTS",
    ):
        monkeypatch.delenv(name, raising=False)


def header(pytester: pytest.Pytester, *args: str) -> str | None:
    """The plugin's header line for a --collect-only run (None: the plugin stays out)."""
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest("--collect-only", *args)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    found = [line for line in result.stdout.lines if line.startswith("parproc:")]
    return found[0] if found else None


def test_default_is_off(pytester: pytest.Pytester) -> None:
    assert header(pytester) is None


def test_one_job_is_off(pytester: pytest.Pytester) -> None:
    assert header(pytester, "--n-jobs=1") is None
    assert header(pytester, "--n-jobs=3", "--par-backend=sequential") is None


def test_command_line(pytester: pytest.Pytester) -> None:
    line = header(pytester, "--n-jobs=3", "--par-backend=multiprocessing")
    assert line == "parproc: 3 workers, backend multiprocessing"


def test_auto_and_negative_counts(pytester: pytest.Pytester) -> None:
    cpus = cpu_count()
    expected_auto = f"parproc: {cpus} workers, backend loky" if cpus > 1 else None
    assert header(pytester, "--n-jobs=auto") == expected_auto
    assert header(pytester, "--n-jobs=-1") == expected_auto
    big = cpus + 5
    assert header(pytester, f"--n-jobs=-{cpus + 1}") is None  # all CPUs but all: one job
    assert header(pytester, f"--n-jobs={big}") == f"parproc: {big} workers, backend loky"


def test_precedence(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nn_jobs = 2\npar_backend = multiprocessing\n")
    assert header(pytester) == "parproc: 2 workers, backend multiprocessing"
    monkeypatch.setenv("PYTEST_PARPROC_N_JOBS", "3")
    monkeypatch.setenv("PYTEST_PARPROC_BACKEND", "loky")
    assert header(pytester) == "parproc: 3 workers, backend loky"
    assert header(pytester, "--n-jobs=4") == "parproc: 4 workers, backend loky"


@pytest.mark.parametrize(
    "ini_file",
    ["tox.ini", "setup.cfg", "pyproject.toml"],
)
def test_ini_files(pytester: pytest.Pytester, ini_file: str) -> None:
    if ini_file == "tox.ini":
        pytester.makefile(".ini", tox="[pytest]\nn_jobs = 2\n")
    elif ini_file == "setup.cfg":
        pytester.makefile(".cfg", setup="[tool:pytest]\nn_jobs = 2\n")
    else:
        pytester.makepyprojecttoml('[tool.pytest.ini_options]\nn_jobs = "2"\n')
    assert header(pytester) == "parproc: 2 workers, backend loky"


@pytest.mark.skipif(pytest.version_tuple < (9,), reason="pytest 9 reads [tool.pytest] natively")
def test_native_toml_table(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest]\nn_jobs = 2\npar_backend = "multiprocessing"\n')
    assert header(pytester) == "parproc: 2 workers, backend multiprocessing"


def usage_error(pytester: pytest.Pytester, *args: str) -> str:
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    return result.stderr.str()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--n-jobs=abc",), ["option --n-jobs", "'abc'", "'auto'"]),
        (("--n-jobs=0",), ["option --n-jobs", "n_jobs=0 is not allowed"]),
        (("--n-jobs=2", "--par-backend=nope"), ["option --par-backend", "backend: nope", "'loky'"]),
        (("--n-jobs=2", "--par-max-worker-restart=-1"), ["--par-max-worker-restart", "'-1'"]),
        (("--n-jobs=2", "--par-max-worker-restart=x"), ["--par-max-worker-restart", "'x'"]),
        (
            ("--n-jobs=2", "--par-backend=threading", "--par-thread-concurrency=half"),
            ["option --par-thread-concurrency", "adaptive, full", "'half'"],
        ),
    ],
)
def test_bad_command_line_values(
    pytester: pytest.Pytester, args: tuple[str, ...], expected: list[str]
) -> None:
    message = usage_error(pytester, *args)
    for text in expected:
        assert text in message


def test_bad_environment_value(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_PARPROC_N_JOBS", "many")
    message = usage_error(pytester)
    assert "environment variable PYTEST_PARPROC_N_JOBS" in message and "'many'" in message


def test_thread_concurrency_from_the_ini_file(pytester: pytest.Pytester) -> None:
    ini = pytester.makeini("[pytest]\nn_jobs = 2\npar_thread_concurrency = some\n")
    message = usage_error(pytester, "--par-backend=threading")
    assert f"ini option par_thread_concurrency in {ini}" in message and "'some'" in message


def test_bad_ini_value(pytester: pytest.Pytester) -> None:
    ini = pytester.makeini("[pytest]\nn_jobs = 2\npar_backend = fast\n")
    message = usage_error(pytester)
    assert f"ini option par_backend in {ini}" in message and "backend: fast," in message


def test_threading_backend_runs_tests_in_this_process(pytester: pytest.Pytester) -> None:
    assert header(pytester, "--n-jobs=2", "--par-backend=threading") == (
        "parproc: 2 threads in this process (backend threading)"
    )


def test_another_thread_backend_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_parproc import register_parallel_backend
        from pytest_parproc.parallel.backends.thread_pool import ThreadingBackend

        register_parallel_backend("mythreads", ThreadingBackend)
        """
    )
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("--n-jobs=2", "--par-backend=mythreads")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "'mythreads' runs tasks in threads of its own" in result.stderr.str()


def test_xdist_and_parproc_together_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    message = usage_error(pytester, "--n-jobs=2", "-n", "2")
    assert "use one of them" in message


def test_disabled_with_dash_p(pytester: pytest.Pytester) -> None:
    assert header(pytester, "-p", "no:parproc") is None
    result = pytester.runpytest("-p", "no:parproc", "--n-jobs=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the option is unknown then


def test_pdb_runs_in_this_process(pytester: pytest.Pytester) -> None:
    line = header(pytester, "--n-jobs=2", "--pdb")
    assert line == "parproc: tests run in this process (--pdb needs the terminal)"


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    for name in ("--n-jobs", "--par-backend", "--par-max-worker-restart", "PYTEST_PARPROC_N_JOBS"):
        assert name in text
