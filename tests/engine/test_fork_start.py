"""The loky backend's ``start_method="fork"``: forked workers inherit the caller's memory,
where forking is safe; otherwise, and for every later worker, fork+exec as usual.

Each case runs in a fresh interpreter, whose threads the test controls (the pytest process
running these tests may have threads of its own)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_parproc import Parallel, parallel_config

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

PRELUDE = textwrap.dedent(
    """
    import json, os, sys, threading
    from pytest_parproc import Parallel, WorkerCrashedError, delayed, parallel_config

    json.parproc_marker = "set in the parent after start-up"

    def inherited(_):
        import json, os
        return os.getpid(), os.getppid(), getattr(json, "parproc_marker", None)

    def results(start_method, n=4):
        with parallel_config(backend="loky", start_method=start_method):
            return Parallel(n_jobs=2, batch_size=1)(delayed(inherited)(i) for i in range(n))
    """
)


def run_script(body: str) -> object:
    script = PRELUDE + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPOSITORY_ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_forked_workers_inherit_what_the_caller_built() -> None:
    found = run_script(
        """
        rows = results("fork")
        me = os.getpid()
        print(json.dumps([[pid != me, ppid == me, mark] for pid, ppid, mark in rows]))
        """
    )
    assert found == [[True, True, "set in the parent after start-up"]] * 4


def test_exec_workers_start_fresh() -> None:
    found = run_script(
        """
        print(json.dumps(sorted({str(mark) for _, _, mark in results("exec")})))
        """
    )
    assert found == ["None"]


def test_a_caller_with_another_thread_is_not_forked() -> None:
    found = run_script(
        """
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        try:
            marks = sorted({str(mark) for _, _, mark in results("fork")})
        finally:
            stop.set()
            thread.join()
        print(json.dumps(marks))
        """
    )
    assert found == ["None"]


def test_a_thread_declared_idle_does_not_keep_workers_from_being_forked() -> None:
    """A server thread waiting in ``accept`` (pytest-rerunfailures' status server, say),
    declared with ``allow_fork_beside``: the pool forks beside it, with no warning even where
    Python 3.12 warns of a fork beside threads (warnings are errors here)."""
    found = run_script(
        """
        import socket, warnings
        from pytest_parproc.parallel.resources import allow_fork_beside, fork_is_safe

        warnings.simplefilter("error")
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        thread = threading.Thread(target=server.accept, daemon=True)
        thread.start()
        before = fork_is_safe()
        allow_fork_beside(thread)
        declared = fork_is_safe()
        marks = sorted({str(mark) for _, _, mark in results("fork")})
        print(json.dumps([before, declared, marks]))
        """
    )
    assert found == [False, True, ["set in the parent after start-up"]]


def test_a_forked_worker_that_dies_is_named_and_replaced_by_a_fresh_one() -> None:
    found = run_script(
        """
        def die(i):
            if i == 0:
                os._exit(7)
            return i

        with parallel_config(backend="loky", start_method="fork"):
            outputs = Parallel(n_jobs=2, batch_size=1, crash_policy="isolate")(
                delayed(die)(i) for i in range(3)
            )
            codes = [o.exitcode if isinstance(o, WorkerCrashedError) else o for o in outputs]
            # The pool lives on, with a thread of its own now: its new workers are fork+exec.
            later = Parallel(n_jobs=2, batch_size=1)(delayed(inherited)(i) for i in range(6))
        print(json.dumps([codes, len(later)]))
        """
    )
    assert found == [[7, 1, 2], 6]


def test_an_unknown_start_method_is_refused() -> None:
    with (
        pytest.raises(ValueError, match="start_method must be one of"),
        parallel_config(backend="loky", start_method="spawn"),
    ):
        Parallel(n_jobs=2)
