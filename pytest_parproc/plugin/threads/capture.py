"""Each concurrent test's own output and log records, though ``sys.stdout`` and the root
logger are one per process (``warning_filters`` does the same for warnings). The package
docstring explains the approach.

While tests run in threads, ``sys.stdout`` and ``sys.stderr`` are routers: a write goes to the
buffer of the test its thread runs (or of its ``capsys``), and anything else to the terminal. A
single root-logger handler passes each record to the handler of the test on that thread.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from .. import pytest_internals


class _Sink:
    """What one test wrote to one stream (text is kept as UTF-8, as pytest's CaptureIO does)."""

    def __init__(self) -> None:
        self._data = bytearray()

    def write_text(self, text: str) -> None:
        self._data += text.encode("utf-8", "surrogateescape")

    def write_bytes(self, data: bytes) -> None:
        self._data += data

    def take_bytes(self) -> bytes:
        data = bytes(self._data)
        self._data.clear()
        return data

    def take_text(self) -> str:
        return self.take_bytes().decode("utf-8", "replace")


class _Local(threading.local):
    def __init__(self) -> None:
        self.isolated = False
        #: the current phase's buffers (None with --capture=no: writes go to the terminal)
        self.sinks: dict[str, _Sink] | None = None
        #: stream name -> the capsys-style capture active on this thread
        self.fixture_sinks: dict[str, Any] = {}
        self.capture_fixture: Any = None
        self.disabled = False
        self.log_handler: logging.Handler | None = None
        #: the current phase's records, for the main process's log file and live logging
        self.phase_records: list[logging.LogRecord] | None = None
        #: those of the phase that ended last, until its report takes them
        self.ended_records: list[logging.LogRecord] = []


_local = _Local()


def in_isolated_test() -> bool:
    """True on a thread that runs a test concurrently with others."""
    return _local.isolated


def per_thread(
    original: Callable[..., Any],
    replacement: Callable[..., Any],
    on_test_thread: Callable[[], bool] = in_isolated_test,
) -> Callable[..., Any]:
    """A stand-in for ``original`` that calls ``replacement`` on a test thread instead."""

    def choose(*args: Any, **kwargs: Any) -> Any:
        return (replacement if on_test_thread() else original)(*args, **kwargs)

    choose.__doc__ = original.__doc__
    return choose


# -- stdout and stderr -------------------------------------------------------------------------


def _targets(name: str) -> list[_Sink]:
    """Where this thread's writes to stream ``name`` go (nowhere: to the terminal)."""
    if _local.disabled or not _local.isolated:
        return []
    phase = _local.sinks[name] if _local.sinks is not None else None
    capture = _local.fixture_sinks.get(name)
    if capture is not None and capture.active:
        return [capture.sink, phase] if capture.tee and phase is not None else [capture.sink]
    return [phase] if phase is not None else []


class RoutedStream(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr`` while tests run in threads."""

    def __init__(self, name: str, fallback: Any, tee: bool) -> None:
        self._name = name
        self._fallback = fallback
        self._tee = tee
        self.buffer = _RoutedBinary(self)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return "surrogateescape"

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        sinks = _targets(self._name)
        if not sinks or self._tee:
            self._fallback.write(text)
        for sink in sinks:
            sink.write_text(text)
        return len(text)

    def write_bytes(self, data: bytes) -> int:
        sinks = _targets(self._name)
        if not sinks or self._tee:
            self._fallback.buffer.write(data)
        for sink in sinks:
            sink.write_bytes(data)
        return len(data)

    def flush(self) -> None:
        if not _targets(self._name):
            self._fallback.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return not _targets(self._name) and bool(self._fallback.isatty())

    def fileno(self) -> int:
        return int(self._fallback.fileno())


class _RoutedBinary(io.RawIOBase):
    def __init__(self, stream: RoutedStream) -> None:
        self._stream = stream

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._stream.write_bytes(bytes(data))


class _NoStdin(io.TextIOBase):
    def read(self, size: int | None = -1) -> str:
        raise OSError("pytest: reading from stdin while output is captured!  Consider using `-s`.")

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return self.read()


class ThreadSysCapture:
    """What ``capsys`` (``capsysbinary``, ``capteesys``) captures with on a test thread, in
    place of pytest's SysCapture: the thread's writes to one stream, not the whole process's."""

    def __init__(self, fd: int, binary: bool, tee: bool = False) -> None:
        self.name = {1: "stdout", 2: "stderr"}[fd]
        self.binary = binary
        self.tee = tee
        self.sink = _Sink()
        self.active = False

    def start(self) -> None:
        _local.fixture_sinks[self.name] = self
        self.active = True

    def done(self) -> None:
        self.active = False
        if _local.fixture_sinks.get(self.name) is self:
            del _local.fixture_sinks[self.name]

    def suspend(self) -> None:
        self.active = False

    def resume(self) -> None:
        self.active = True

    def snap(self) -> Any:
        return self.sink.take_bytes() if self.binary else self.sink.take_text()

    def writeorg(self, data: Any) -> None:
        # what the test did not read goes to its captured output, as in a serial run
        sinks = _local.sinks  # close() runs on the test's own thread
        if sinks is not None:
            sink = sinks[self.name]
            sink.write_bytes(data) if self.binary else sink.write_text(data)
        else:  # --capture=no: to the terminal
            stream = getattr(sys, f"__{self.name}__")
            stream.buffer.write(data) if self.binary else stream.write(data)


def sys_capture_factory(original: Any, binary: bool) -> Callable[..., Any]:
    """Stands in for pytest's SysCapture class: ThreadSysCapture on a test thread."""

    def make(fd: int, tmpfile: Any = None, **config: Any) -> Any:
        if in_isolated_test() and fd in (1, 2):
            return ThreadSysCapture(fd, binary, bool(config.get("tee")))
        return original(fd, tmpfile, **config)

    make.EMPTY_BUFFER = original.EMPTY_BUFFER  # type: ignore[attr-defined]  # read by CaptureFixture
    return make


@contextmanager
def capture_disabled() -> Iterator[None]:
    """``capsys.disabled()`` on a test thread: its writes go to the terminal meanwhile."""
    previous, _local.disabled = _local.disabled, True
    try:
        yield
    finally:
        _local.disabled = previous


@contextmanager
def phase_capture(when: str, item: pytest.Item) -> Iterator[None]:
    """One phase of a test on its thread: what it prints becomes the phase's report sections."""
    sinks = _local.sinks
    try:
        yield
    finally:
        if sinks is not None:
            item.add_report_section(when, "stdout", sinks["stdout"].take_text())
            item.add_report_section(when, "stderr", sinks["stderr"].take_text())


@contextmanager
def install_streams(tee: bool, close_stdin: bool) -> Iterator[None]:
    """Routers on sys.stdout and sys.stderr (and stdin closed, when output is captured) for the
    concurrent part of a run."""
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdout = RoutedStream("stdout", saved[1], tee)
    sys.stderr = RoutedStream("stderr", saved[2], tee)
    if close_stdin:
        sys.stdin = _NoStdin()
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


# -- log records -------------------------------------------------------------------------------


class _LogRouter(logging.Handler):
    """The one root-logger handler while tests run in threads: a record goes to the handler of
    the test running on the thread that logged it, and is kept for the log file and live
    logging, which get it when the test's report is replayed (``compat.logging_plugin``). A
    record logged outside a test's phase goes where it went before: to those two, at once."""

    def __init__(self, detached: list[logging.Handler]) -> None:
        super().__init__()
        self.detached = detached

    def handle(self, record: logging.LogRecord) -> bool:
        handler = _local.log_handler
        if handler is None:
            for other in self.detached:
                if record.levelno >= other.level:
                    other.handle(record)
            return True
        if _local.phase_records is not None:
            _local.phase_records.append(record)
        return bool(handler.handle(record))

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() routes
        pass


@contextmanager
def install_log_router(level: int | None, detach: list[logging.Handler]) -> Iterator[None]:
    root = logging.getLogger()
    detached = [handler for handler in detach if handler in root.handlers]
    router = _LogRouter(detached)
    saved_level = root.level
    for handler in detached:
        root.removeHandler(handler)
    root.addHandler(router)
    if level is not None:
        root.setLevel(min(saved_level, level))
    try:
        yield
    finally:
        root.removeHandler(router)
        root.setLevel(saved_level)
        for handler in detached:
            root.addHandler(handler)


def take_phase_records() -> list[logging.LogRecord]:
    """The records of the phase that ended last on this thread (once)."""
    records, _local.ended_records = _local.ended_records, []
    return records


@contextmanager
def phase_log(item: pytest.Item, when: str, formatter: Any, level: int | None) -> Iterator[None]:
    """One phase of a test on its thread: its log records become the phase's "log" section."""
    handler = pytest_internals.phase_log_handler(item, when)
    handler.setFormatter(formatter)
    if level is not None:
        handler.setLevel(level)
    previous, _local.log_handler = _local.log_handler, handler
    _local.phase_records = []
    try:
        yield
    finally:
        _local.log_handler = previous
        _local.ended_records, _local.phase_records = _local.phase_records or [], None
        item.add_report_section(when, "log", handler.stream.getvalue().strip())


# -- the test on this thread -------------------------------------------------------------------


@contextmanager
def isolated_test(capturing: bool) -> Iterator[None]:
    """This thread runs a test concurrently with others: its output gets buffers of its own."""
    _local.isolated = True
    _local.sinks = {"stdout": _Sink(), "stderr": _Sink()} if capturing else None
    _local.fixture_sinks = {}
    _local.capture_fixture = None
    _local.disabled = False
    try:
        yield
    finally:
        _local.isolated = False
        _local.sinks = None
        _local.fixture_sinks = {}
        _local.capture_fixture = None
        _local.log_handler = None


def set_capture_fixture(fixture: Any) -> None:
    if _local.capture_fixture is not None:
        current = _local.capture_fixture.request.fixturename
        fixture.request.raiseerror(
            f"cannot use {fixture.request.fixturename} and {current} at the same time"
        )
    _local.capture_fixture = fixture


def unset_capture_fixture() -> None:
    _local.capture_fixture = None
