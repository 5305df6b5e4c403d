"""Task functions for the engine tests: importable by name in worker processes."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pytest_parproc import Parallel, delayed

_initialized: list[Any] = []


def square(value: int) -> int:
    return value * value


def identity(value: Any) -> Any:
    return value


def add(left: int, right: int = 0) -> int:
    return left + right


def worker_identity(_: object = None) -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


def fail_on(value: int, bad: int) -> int:
    if value == bad:
        raise ValueError(f"bad value {value}")
    return value


def touch(path: str) -> None:
    """An initializer that leaves a trace."""
    with open(path, "a"):
        pass


def sleep_then(value: int, seconds: float) -> int:
    time.sleep(seconds)
    return value


def wait_for_file(value: int, path: str, limit_s: float = 60.0) -> int:
    """Finish only once ``path`` exists: orders completions without timing assumptions."""
    deadline = time.monotonic() + limit_s
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} never appeared")
        time.sleep(0.01)
    return value


def create_file(value: int, path: str) -> int:
    Path(path).write_text("x")
    return value


def nested_sum(value: int) -> tuple[int, str]:
    inner = Parallel(n_jobs=2)
    results = inner(delayed(square)(i) for i in range(value))
    return sum(results), inner.backend.name


def die(value: int, how: str, when: int) -> int:
    if value != when:
        return value
    sys.stderr.write(f"worker about to die by {how}\n")
    sys.stderr.flush()
    if how == "exit":
        os._exit(7)
    elif how == "exit0":
        os._exit(0)
    elif how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "segfault":
        ctypes.string_at(0)
    elif how == "abort":
        os.abort()
    elif how == "sys.exit":
        sys.exit(3)
    return value


def die_holding_queue_locks(value: int, when: int) -> int:
    """Die as a multiprocessing.Pool worker killed while it sends a result would: holding the
    write lock of the pool's queues (here: of every queue the worker can find)."""
    import gc
    from multiprocessing.queues import SimpleQueue

    if value != when:
        time.sleep(0.1)
        return value
    for queue in [found for found in gc.get_objects() if isinstance(found, SimpleQueue)]:
        lock = getattr(queue, "_wlock", None)
        if lock is not None:
            lock.acquire()
    os._exit(1)


def record_pid_and_sleep(path: str, seconds: float) -> int:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    Path(path).write_text(f"{os.getpid()} {child.pid}")
    time.sleep(seconds)
    return 0


def remember(value: Any) -> None:
    _initialized.append(value)


def initialized_values(_: object = None) -> list[Any]:
    return list(_initialized)


def failing_initializer() -> None:
    raise RuntimeError("initializer exploded on purpose")


def write_on_exit(path: str) -> None:
    Path(path, f"finalized-{os.getpid()}").write_text("done")


def environment_value(name: str) -> str | None:
    return os.environ.get(name)


def return_lock(_: object = None) -> object:
    return threading.Lock()


class UnpicklableError(Exception):
    def __init__(self, message: str, payload: object) -> None:
        super().__init__(message)
        self.payload = payload

    def __reduce__(self) -> Any:
        raise TypeError("this exception refuses to be pickled")


def raise_unpicklable(_: object = None) -> None:
    raise UnpicklableError("cannot travel", threading.Lock())


def write_stderr(text: str) -> int:
    sys.stderr.write(text)
    sys.stderr.flush()
    return 0


def array_info(array: Any) -> tuple[str, str | None, float]:
    return type(array).__name__, getattr(array, "filename", None), float(array.sum())


def hold_memory(megabytes: int) -> int:
    _initialized.append(bytearray(megabytes * 1024 * 1024))
    return os.getpid()


def write_raises(array: Any) -> bool:
    """Try to write into ``array``; True if it refused (a read-only memmap)."""
    try:
        array[0] = -1.0
    except ValueError:
        return True
    return False


def object_id(value: object) -> int:
    return id(value)


def print_line(text: str) -> int:
    print(text)
    return 0


def mark_and_return(value: int, folder: str, big: bool) -> bytes:
    """Leave one file per execution (so a task run twice is seen), return a large or small
    result (a large one keeps the pool's manager busy reading it)."""
    Path(folder, f"{value}.{os.getpid()}.{time.monotonic_ns()}").write_text("")
    return b"x" * (20_000_000 if big else 10)


def kill_self_on(value: int, when: int) -> int:
    if value == when:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return value


def record_start(value: int, started: list[int], bad: int) -> int:
    started.append(value)
    if value == bad:
        raise ValueError("stop here")
    time.sleep(0.01)
    return value


class KeywordOnlyError(Exception):
    """Pickles, but does not unpickle: ``__init__`` needs a keyword its ``args`` lack (as
    pytest's ConftestImportFailure)."""

    def __init__(self, path: str, *, cause: str) -> None:
        super().__init__(path, cause)


def raise_keyword_only(_: object = None) -> None:
    raise KeywordOnlyError("conftest.py", cause="broken")


def retire_on(value: int, when: int) -> tuple[int, int]:
    """(value, pid); asks the worker to retire after the task with ``value == when``."""
    from pytest_parproc import retire_worker

    if value == when:
        retire_worker("asked by the test")
    return value, os.getpid()
