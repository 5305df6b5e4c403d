"""The live progress: a status line kept on a terminal's last row while tests run (checked on a
real pseudo-terminal, its screen rebuilt by the ``pyte`` terminal emulator), gone at the end,
pytest's own lines intact; SLOW lines where there is no terminal."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import sys
import termios
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_parproc.plugin.report.progress import Counts, slow_line, status_text
from pytest_parproc.plugin.report.terminal import BottomLine, DirectOutput

pyte = pytest.importorskip("pyte", reason="pyte (the test extra) emulates the terminal")

pytest_plugins = ["pytester"]

ROWS, COLUMNS = 24, 100


# -- the status line ---------------------------------------------------------------------------
def test_status_text_fits_the_width_longest_running_first() -> None:
    counts = Counts(done=5, failed=1)
    running = [
        ("w0", "tests/test_mod.py::test_something_long[param-1]", 3.2),
        ("w1", "tests/test_other.py::TestX::test_y", 12.0),
        ("w2", "a.py::b", 0.1),
    ]
    wide = status_text(counts, 100, 42.0, running, 200)
    assert wide == (
        "parproc 5/100 | 1 failed | ~42 s left | w1 12 s tests/test_other.py::TestX::test_y"
        " | w0 3.2 s tests/test_mod.py::test_something_long[param-1] | w2 0.1 s a.py::b"
    )
    for width in (30, 60, 80, 120):
        text = status_text(counts, 100, 42.0, running, width)
        assert len(text) <= width
    # node ids are cut from the left: the test's name stays
    assert status_text(counts, 100, None, running, 70) == (
        "parproc 5/100 | 1 failed | w1 12 s ...ther.py::TestX::test_y | +2 more"
    )
    assert status_text(counts, 100, None, running, 100) == (
        "parproc 5/100 | 1 failed | w1 12 s ...:TestX::test_y | w0 3.2 s ...long[param-1]"
        " | w2 0.1 s a.py::b"
    )
    assert status_text(Counts(), 10, None, [], 80) == "parproc 0/10 | starting"


def test_slow_line_names_the_test_and_its_worker() -> None:
    assert slow_line("w3", "t.py::test_x", 60) == "parproc: SLOW [> 60 s] t.py::test_x on w3"


class FakeTerminal(io.StringIO):
    def fileno(self) -> int:
        raise OSError("not a real terminal")


def test_the_status_row_is_kept_apart_from_the_lines_that_scroll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LINES", "6")
    monkeypatch.setenv("COLUMNS", "40")
    screen = pyte.Screen(40, 6)
    stream = pyte.Stream(screen)
    file = FakeTerminal()

    def show(text: str) -> None:
        stream.feed(text)

    show("collected 9 items\r\n\r\ntest_a.py ")
    bar = BottomLine(DirectOutput(file))
    bar.open()
    show(file.getvalue())
    for number in range(9):
        file.seek(0)
        file.truncate()
        bar.draw(f"parproc {number}/9 | w0 test_a.py::test_{number}")
        show(file.getvalue())
        show(".\r\n" if number % 3 == 2 else ".")  # pytest's dots, lines that scroll
        if number % 3 == 2:
            show("test_b.py ")
    assert screen.display[-1].startswith("parproc 8/9 | w0 test_a.py::test_8")
    file.seek(0)
    file.truncate()
    bar.close()
    show(file.getvalue() + "\r\n== 9 passed ==")
    rows = [row.rstrip() for row in screen.display]
    # every line as pytest wrote it, in order, nothing of the status line in between or after
    assert rows == [
        "",  # (the line after "collected 9 items": that scrolled away)
        "test_a.py ...",
        "test_b.py ...",
        "test_b.py ...",
        "test_b.py",
        "== 9 passed ==",  # where the status row was
    ]


# -- whole runs on a pseudo-terminal -----------------------------------------------------------
SUITE = """
import time

import pytest

@pytest.mark.parametrize("n", range(6))
def test_slow(n):
    time.sleep(0.5)

def test_fail():
    assert 0
"""
STATUS = re.compile(r"^parproc \d+/7\b")


@dataclass
class TerminalRun:
    #: the terminal's last row each time output arrived
    during: list[str]
    #: the whole screen at the end
    final: list[str]
    #: everything written to the terminal
    raw: str


def run_on_terminal(folder: Path, *args: str, size: tuple[int, int] = (80, COLUMNS)) -> TerminalRun:
    """Run pytest on a pseudo-terminal of ``size`` (rows, columns: 0 x 0, as a terminal nobody
    sized says, is shown on 24 x 80)."""
    rows, columns = size
    command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider"]
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "PY_COLORS", "NO_COLOR", "FORCE_COLOR"))
        and key not in ("COLUMNS", "LINES")
    }
    environment["TERM"] = "xterm"
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(folder)
        os.execve(sys.executable, [*command, *args], environment)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    screen = pyte.Screen(columns or 80, rows or 24)
    stream = pyte.ByteStream(screen)
    last_rows = []
    raw = bytearray()
    try:
        while select.select([fd], [], [], 120)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            raw += chunk
            stream.feed(chunk)
            last_rows.append(screen.display[-1].rstrip())
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
    final = [row.rstrip() for row in screen.display]
    return TerminalRun(last_rows, final, raw.decode(errors="replace"))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_a_status_line_while_tests_run_and_none_at_the_end(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makepyfile(test_p=SUITE)
    run = run_on_terminal(pytester.path, "--n-jobs=2", f"--par-backend={backend}")
    during, final = run.during, run.final
    shown = [row for row in during if STATUS.match(row)]
    assert shown, during
    assert any("test_p.py::test_slow" in row for row in shown)  # a worker's current test
    assert not any(STATUS.match(row) for row in final), final
    # pytest's own line of dots, whole
    (dots,) = [row for row in final if row.startswith("test_p.py ")]
    assert re.fullmatch(r"test_p\.py [.F]{7} +\[100%\]", dots), dots
    assert any(re.search(r"=+ 1 failed, 6 passed in ", row) for row in final)


@pytest.mark.slow
def test_verbose_lines_stay_whole(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_p=SUITE)
    run = run_on_terminal(pytester.path, "--n-jobs=2", "-v")
    during, final = run.during, run.final
    assert any(STATUS.match(row) for row in during)
    verbose = [row for row in final if row.startswith("test_p.py::")]
    assert len(verbose) == 7, final
    for row in verbose:
        assert re.fullmatch(r"test_p\.py::test_\S+ (PASSED|FAILED) +\[ *\d+%\]", row), row
    assert not any(STATUS.match(row) for row in final)


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "quiet"), [("loky", ""), ("threading", ""), ("loky", "-q")])
def test_without_a_terminal_only_slow_lines(
    pytester: pytest.Pytester, backend: str, quiet: str
) -> None:
    pytester.makepyfile(test_p=SUITE)
    options = [quiet] if quiet else []
    result = pytester.runpytest_subprocess(
        "--n-jobs=2", f"--par-backend={backend}", "--par-slow=0.2", "-p", "no:randomly", *options
    )
    output = result.stdout.str()
    assert "\x1b[" not in output
    assert not any(STATUS.match(line) for line in result.stdout.lines)
    slow = [line for line in result.stdout.lines if "SLOW" in line]
    assert slow, output
    for line in slow:
        assert re.fullmatch(r"parproc: SLOW \[> 0.2 s\] test_p\.py::test_slow\[\d\] on w[01]", line)


@pytest.mark.slow
def test_off_shows_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_p=SUITE)
    run = run_on_terminal(pytester.path, "--n-jobs=2", "--par-progress=off", "--par-slow=0.2")
    assert not any(STATUS.match(row) for row in run.during)
    assert "SLOW" not in run.raw and "\x1b[1;" not in run.raw


@pytest.mark.slow
def test_a_terminal_that_tells_no_size_gets_slow_lines_not_a_status_line(
    pytester: pytest.Pytester,
) -> None:
    # (a pseudo-terminal nobody sized says 0 x 0: docker run -t, some CI runners)
    pytester.makepyfile(test_p=SUITE)
    run = run_on_terminal(pytester.path, "--n-jobs=2", "--par-slow=0.2", size=(0, 0))
    assert not any(STATUS.match(row) for row in run.during)
    assert "\x1b[1;" not in run.raw  # no scrolling region
    assert "parproc: SLOW [> 0.2 s] test_p.py::test_slow[" in run.raw


ALONE = """
def pytest_parproc_run_alone(item):
    return "alone" if item.name == "test_alone" else None
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_no_progress_thread_while_the_main_thread_runs_tests(
    pytester: pytest.Pytester, backend: str
) -> None:
    """Tests that run alone in the main process (a benchmark, a test that is not thread-safe,
    the threading runner's serial lane) run with no other thread, as serially."""
    pytester.makepyfile(
        test_m="""
        import threading
        import time

        import pytest

        @pytest.mark.parproc_serial
        def test_alone():
            time.sleep(0.5)
            assert "parproc-progress" not in [thread.name for thread in threading.enumerate()]

        def test_other():
            time.sleep(0.5)
        """
    )
    pytester.makeconftest(ALONE)
    result = pytester.runpytest_subprocess(
        "--n-jobs=2", f"--par-backend={backend}", "--par-slow=0.2", "-p", "no:randomly"
    )
    assert result.ret == 0, result.stdout.str()
    slow = [line for line in result.stdout.lines if "SLOW" in line]
    assert not any("test_alone" in line for line in slow), slow


def test_a_fork_waits_only_for_a_look_in_progress() -> None:
    """The main thread holds the terminal lock nearly always; a fork (from it, or from a
    pool's thread) waits only while the progress thread looks, and a forked child forgets the
    progress (its own forks wait for nothing)."""
    import threading

    from pytest_parproc.plugin.report import progress as module

    lock = threading.RLock()
    running = module.Progress(lock, [], 1, lambda: module.WorkersNow({}), 60.0, print, None, {})
    module._running.append(running)
    try:
        with lock:  # (as the main thread holds it)
            module._before_fork()
            assert module._fork_locks == [running.looking]  # taken at once
            module._after_fork()
            assert not running.looking.locked()
        module._before_fork()
        module._forget_in_child()
        assert module._running == [] and module._fork_locks == []
    finally:
        if running.looking.locked():
            running.looking.release()
        module._running[:] = [item for item in module._running if item is not running]


@pytest.mark.slow
def test_the_status_line_stays_out_of_a_main_thread_tests_captured_output(
    pytester: pytest.Pytester,
) -> None:
    """While the main thread runs a test, pytest's capture holds descriptor 1: nothing of the
    status line goes into that test's captured output."""
    pytester.makepyfile(
        test_m="""
        import time

        import pytest

        @pytest.mark.parproc_serial
        def test_alone_fails():
            print("from the test")
            time.sleep(0.6)
            assert 0

        def test_other():
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "--n-jobs=2",
        "--par-backend=threading",
        "--par-progress=bar",
        "--par-slow=0.2",
        "-p",
        "no:randomly",
    )
    assert result.ret == 1
    output = result.stdout.str()
    captured = output.split("Captured stdout call")[1].split("=====")[0]
    assert captured.strip("- \n") == "from the test"
    assert "\x1b" not in captured


def test_an_error_while_looking_ends_the_progress_quietly_with_its_reason() -> None:
    import threading

    from pytest_parproc.plugin.report import progress as module

    def broken() -> module.WorkersNow:
        raise OSError("the run directory went away")

    lock = threading.RLock()
    running = module.Progress(lock, ["t.py::a"], 1, broken, 0.2, print, None, {})
    running.start()
    running._thread.join(timeout=30)
    running.stop()
    assert not running._thread.is_alive()
    assert running.failure == "OSError: the run directory went away"


class InterruptedOnce:
    """A lock whose first acquire is interrupted (Ctrl-C while the main thread waits)."""

    def __init__(self) -> None:
        self.owned = False
        self.interrupted = False

    def _is_owned(self) -> bool:
        return self.owned

    def acquire(self) -> bool:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        self.owned = True
        return True


def test_the_main_thread_takes_its_lock_back_even_when_interrupted() -> None:
    from pytest_parproc.plugin.report.view import take_back

    lock = InterruptedOnce()
    with pytest.raises(KeyboardInterrupt):
        take_back(lock)  # type: ignore[arg-type]
    assert lock.owned  # held once the interruption is raised
