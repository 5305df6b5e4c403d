"""A command-line runner tested the way many projects test theirs: ``sys.argv`` and
``sys.stdout`` swapped for the length of a call. Two such tests at the same time on threads
swap them for each other, and each reads what the other set; alone, each passes."""

import io
import sys
import threading

import pytest

_both_started = threading.Barrier(2)
_both_printed = threading.Barrier(2)


def _meet(barrier: threading.Barrier) -> None:
    """Work that takes a moment: the other test, on a thread, runs meanwhile."""
    try:
        barrier.wait(timeout=0.3)
    except threading.BrokenBarrierError:
        pass  # alone (a serial run): nobody else to wait for


def main() -> None:
    print(f"hello {sys.argv[1]}")
    _meet(_both_started)
    print(f"bye {sys.argv[1]}")  # read again, as a runner does that parses late
    _meet(_both_printed)


def run_cli(*args: str) -> str:
    saved = sys.argv, sys.stdout
    sys.argv, sys.stdout = ["prog", *args], io.StringIO()
    try:
        main()
        return sys.stdout.getvalue()
    finally:
        sys.argv, sys.stdout = saved


@pytest.mark.parametrize("name", ["ada", "bob"])
def test_cli_greets_and_leaves(name: str) -> None:
    assert run_cli(name) == f"hello {name}\nbye {name}\n"
