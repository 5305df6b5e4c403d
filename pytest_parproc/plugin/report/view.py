"""The run's view of itself in the main process: what the controllers tell it, the live
progress while tests run, and the page and trace written when they have."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from ..pytest_internals.terminal import terminal_file
from .events import MAIN_LANE, SERIAL_LANE, RunEvents
from .options import ReportOptions
from .progress import Progress, Running, WorkersNow, write_line_through
from .terminal import BottomLine, DirectOutput
from .timeline import RunFacts, timeline_data

VIEW_KEY = pytest.StashKey["RunView"]()
RECORDER = "parproc-recorder"
T = TypeVar("T")


class RunView:
    """Registered in the main process where a file is to be written or progress shown (for a
    serial run too, where only the files apply); ``view_of`` gives the controllers one in any
    case, doing nothing where nothing was asked."""

    def __init__(self, config: pytest.Config | None, options: ReportOptions) -> None:
        self.config = config
        self.options = options
        self.events = RunEvents(time.time()) if options.records else None
        #: the lane of the reports logged from now on (the worker a result came from)
        self.lane = SERIAL_LANE
        #: what the controller knows beside the events (None: a serial run)
        self.facts: RunFacts | None = None
        #: held by the main thread except while it waits for results (``waiting``)
        self.lock = threading.RLock()
        self.progress: Progress | None = None
        self.written: list[tuple[str, str]] = []
        self.failed_to_write: list[str] = []

    @property
    def live(self) -> bool:
        """Whether the live progress will want to know what each worker runs now."""
        return self.config is not None and self.options.progress != "off"

    # -- what the controllers tell ----------------------------------------------------------
    def worker(
        self,
        worker_id: str,
        pid: int,
        started_at: float | None = None,
        ready_at: float | None = None,
        address: str = "",
    ) -> None:
        if self.events is not None:
            self.events.worker(worker_id, pid, started_at, ready_at, address)

    def span(self, name: str, lane: str = MAIN_LANE) -> contextlib.AbstractContextManager[None]:
        if self.events is None:
            return contextlib.nullcontext()
        return self.events.span(name, lane)

    def mark(self, lane: str, kind: str, nodeid: str | None, text: str) -> None:
        """A crash or a time limit on ``lane``, while running ``nodeid`` (if any)."""
        if self.events is not None:
            self.events.mark(lane, kind, text)
            if nodeid is not None:
                self.events.flag(nodeid, kind)

    def start_progress(
        self,
        session: pytest.Session,
        finished: set[int],
        n_workers: int,
        told: Callable[[], tuple[Running, int, int]],
        expected: dict[str, float] | None = None,
    ) -> None:
        """The live progress of the session's tests (run by ``n_workers``), where it is wanted:
        on a terminal the status line, anywhere the SLOW lines. ``finished``: the replayer's
        tests replayed; ``told``: what the workers say (``WorkersNow.of``)."""
        mode = self.options.progress
        if self.config is None or mode == "off" or self.progress is not None:
            return

        def workers_now() -> WorkersNow:  # (on the progress thread)
            return WorkersNow.of(told(), finished, session.testsfailed)

        nodeids = [item.nodeid for item in session.items]
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None:
            return
        file = terminal_file(self.config)
        out = DirectOutput(file) if file is not None else None
        bar = BottomLine(out) if out is not None else None
        if bar is not None and not _wants_bar(self.config, mode, bar):
            bar = None
        writer = self.config.get_terminal_writer()
        self.progress = Progress(
            self.lock,
            nodeids,
            n_workers,
            workers_now,
            self.options.slow_s,
            write_line_through(terminal, writer),
            bar,
            expected or {},
            out,
        )
        self.progress.start()

    def waiting(self, outputs: Iterator[T]) -> Iterator[T]:
        """The results as they come; while the main thread waits for one, the progress may
        write to the terminal."""
        if self.progress is None:
            yield from outputs
            return
        lock = self.lock
        while True:
            try:
                lock.release()
                output = next(outputs, _END)
            finally:
                take_back(lock)
            if output is _END:
                return
            yield output  # type: ignore[misc]

    @contextlib.contextmanager
    def main_thread_tests(self) -> Iterator[None]:
        """While the main thread runs tests itself, through pytest's protocol (the threading
        runner's serial lane, tests that run alone): the progress thread is gone. Such tests
        run alone on purpose (a benchmark's timing, a test that is not thread-safe, one that
        counts the threads), as in a serial run; the status line shows where it stood."""
        progress = self.progress
        if progress is None:
            yield
            return
        self._end_thread(progress)
        try:
            yield
        finally:
            progress.resume()

    # -- pytest hooks -----------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_collection(self) -> Any:
        with self.span("collection"):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self) -> Any:
        if self.events is not None:
            self.events.loop_started = time.time()
        take_back(self.lock)
        try:
            return (yield)
        finally:
            try:
                self._stop_progress()
            finally:
                if _owned(self.lock):
                    self.lock.release()
                if self.events is not None:
                    self.events.ended = time.time()
                    self._write_files()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for what, path in self.written:
            terminalreporter.write_line(f"parproc: {what} written to {path}")
        for text in self.failed_to_write:
            terminalreporter.write_line(f"parproc: {text}", red=True)

    # -- the end ------------------------------------------------------------------------------
    def _stop_progress(self) -> None:
        progress = self.progress
        if progress is None:
            return
        try:
            progress.stop()
        finally:
            try:
                self._end_thread(progress)
            finally:
                if progress.out is not None:
                    progress.out.close()
        if progress.failure:
            self.failed_to_write.append(f"the live progress stopped: {progress.failure}")

    def _end_thread(self, progress: Progress) -> None:
        """The progress thread ends (it may be waiting for the lock: let go meanwhile)."""
        progress.pause()
        if _owned(self.lock):
            self.lock.release()
        try:
            progress.join()
        finally:
            take_back(self.lock)

    def _write_files(self) -> None:
        assert self.events is not None
        # What is built here is garbage only once written: the collector's passes over it
        # (and over the run's reports, tens of thousands of objects) would double the cost.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._write_files_now()
        finally:
            # Written: what was kept for the files goes now (freed by reference counts, not
            # left to the collector's next full pass, or the interpreter's exit).
            self.events = None
            if self.config is not None and self.config.pluginmanager.has_plugin(RECORDER):
                self.config.pluginmanager.unregister(name=RECORDER)
            if collecting:
                gc.enable()

    def _write_files_now(self) -> None:
        from .page import write_page
        from .trace import write_trace

        assert self.events is not None
        facts = self.facts or RunFacts("none", 1, "the tests ran one after another")
        try:
            data = timeline_data(self.events, facts, "")
            data["title"] = _title(len(data["tests"]), facts)
        except Exception as error:  # (whatever it is, the run's results stand)
            self.failed_to_write.append(
                f"could not write the timeline files: {type(error).__name__}: {error}"
            )
            return
        for what, path, write in (
            ("timeline page", self.options.page, write_page),
            ("trace", self.options.trace, write_trace),
        ):
            if path is None:
                continue
            try:
                write(path, data)
            except Exception as error:  # (whatever it is, the run's results stand)
                # The summary says what is missing, and why.
                self.failed_to_write.append(
                    f"could not write the {what} to {path}: {type(error).__name__}: {error}"
                )
            else:
                self.written.append((what, str(path)))


class _Recorder:
    """Keeps each report's times for the page and the trace (registered only where a file is
    to be written)."""

    def __init__(self, view: RunView, events: RunEvents) -> None:
        self.view = view
        self.events = events

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.events.report(report, self.view.lane)


_END = object()


def _wants_bar(config: pytest.Config, mode: str, bar: BottomLine) -> bool:
    """The status line: asked for, or on a terminal that takes escape sequences (pytest's own
    rules: ``--color``, ``NO_COLOR``, ``TERM=dumb``) and tells its size, unless ``-qq`` asks
    for near silence."""
    if mode == "bar":
        return True
    writer = config.get_terminal_writer()
    try:
        terminal = bool(bar.file.isatty())
    except (OSError, ValueError):
        terminal = False
    if not (terminal and writer.hasmarkup and config.get_verbosity() > -2):
        return False
    return bar.measured() is not None


def _title(count: int, facts: RunFacts) -> str:
    tests = f"{count} test{'s' if count != 1 else ''}"
    if facts.backend == "none":
        return f"pytest-parproc: {tests}, one after another"
    return f"pytest-parproc: {tests}, {facts.n_jobs} workers ({facts.backend})"


def _owned(lock: threading.RLock) -> bool:
    """Whether this thread holds ``lock`` (``_is_owned`` is what ``threading.Condition``
    asks an RLock)."""
    return bool(lock._is_owned())  # type: ignore[attr-defined]


def take_back(lock: threading.RLock) -> None:
    """The main thread takes its lock back, once, whatever interrupts it: Ctrl-C, or a time
    limit's SIGALRM, while it waits for the progress thread to end a look. The interruption is
    raised once the lock is held (the count stays one, and every later release is right)."""
    interruption: BaseException | None = None
    while not _owned(lock):
        try:
            lock.acquire()
        except BaseException as raised:  # (raised below, once the lock is held)
            interruption = interruption or raised
    if interruption is not None:
        raise interruption


def view_of(config: pytest.Config) -> RunView:
    """The run's view; one that does nothing where none is registered."""
    view = config.stash.get(VIEW_KEY, None)
    if view is None:
        view = config.stash[VIEW_KEY] = RunView(None, ReportOptions(progress="off"))
    return view


def register(config: pytest.Config, options: ReportOptions) -> None:
    """In the main process's ``pytest_configure``, where a file is to be written or (in a
    parallel run) progress shown."""
    view = RunView(config, options)
    config.stash[VIEW_KEY] = view
    config.pluginmanager.register(view, "parproc-view")
    if view.events is not None:
        config.pluginmanager.register(_Recorder(view, view.events), RECORDER)
