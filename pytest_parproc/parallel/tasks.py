"""Running a batch of tasks, and the codec for outcomes that cross a process boundary.

A worker process imports this module before its first task, so it imports little: no
``typing`` at run time, ``traceback`` and ``cloudpickle`` only when an error needs them.
"""

from __future__ import annotations

import io
import pickle
import sys
import time

from .errors import RemoteTraceback, UnpicklableTaskError

# Not ``typing.TYPE_CHECKING``: importing typing costs a worker ~10 ms at start-up, and
# type checkers honour any constant of this name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .backends.base import Task


def _format(error: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(error))


def run_tasks(
    tasks: list[Task], on_task_start: Callable[[int], None] | None = None
) -> tuple[list[Any], BaseException | None]:
    """Run tasks in order; stop at the first exception, which is returned, not raised.
    ``on_task_start(offset)`` is called before each task."""
    values: list[Any] = []
    append = values.append
    for offset, (function, args, kwargs) in enumerate(tasks):
        if on_task_start is not None:
            on_task_start(offset)
        try:
            append(function(*args, **kwargs))
        except BaseException as error:  # SystemExit too: a task must not end its worker
            return values, error
    return values, None


def run_batch_payload(payload: bytes | memoryview) -> tuple[bytes, int]:
    """Worker side of a process backend: decode tasks, run them, encode the outcome; also
    return how many tasks the batch held."""
    started = time.perf_counter()
    try:
        tasks: list[Task] = pickle.loads(payload)
    except BaseException as load_error:
        return encode_outcome([], load_error, 0.0), 1
    values, error = run_tasks(tasks)
    return encode_outcome(values, error, time.perf_counter() - started), len(tasks)


def encode_outcome(values: list[Any], error: BaseException | None, duration_s: float) -> bytes:
    """Serialize what a batch produced; an error travels with its formatted traceback."""
    error_part: tuple[BaseException, str] | None = None
    if error is not None:
        error_part = (_rebuildable(error), _format(error))
    try:
        numpy = sys.modules.get("numpy")
        if numpy is None:
            return pickle.dumps((values, error_part, duration_s), pickle.HIGHEST_PROTOCOL)
        file = io.BytesIO()
        _MemmapsAsArrays(file, numpy).dump((values, error_part, duration_s))
        return file.getvalue()
    except Exception:
        return _encode_with_fallback(values, error_part, duration_s)


class _MemmapsAsArrays(pickle.Pickler):
    """Results go back as plain arrays where a task returns a memmap (one it was given, say),
    as joblib returns them: numpy's own pickle of a memmap loses a non-native byte order and
    garbles the values."""

    def __init__(self, file: io.BytesIO, numpy: Any) -> None:
        super().__init__(file, pickle.HIGHEST_PROTOCOL)
        self._memmap = numpy.memmap
        self._asarray = numpy.asarray

    def reducer_override(self, obj: object) -> Any:
        if isinstance(obj, self._memmap):
            return self._asarray(obj).__reduce_ex__(pickle.HIGHEST_PROTOCOL)
        return NotImplemented


def _rebuildable(error: BaseException) -> BaseException:
    """``error``, or a stand-in when its pickle cannot be loaded again: an exception whose
    ``__init__`` takes other arguments than its ``args`` pickles fine and fails to unpickle,
    which would break the caller's side instead of telling it what the task raised."""
    try:
        data = pickle.dumps(error, pickle.HIGHEST_PROTOCOL)
    except Exception:
        return error  # not picklable at all: the cloudpickle fallback deals with it
    try:
        pickle.loads(data)
    except Exception as problem:
        return UnpicklableTaskError(
            f"{type(error).__name__}: {error} (the exception cannot be rebuilt from its pickle, "
            f"{type(problem).__name__}: {problem}; so it is re-raised as this error)"
        )
    return error


def _encode_with_fallback(
    values: list[Any], error_part: tuple[BaseException, str] | None, duration_s: float
) -> bytes:
    # Something did not pickle. Try cloudpickle (a result may be a lambda), then replace what
    # still fails by an error that names it, so the caller learns which task is to blame.
    import cloudpickle

    try:
        return bytes(cloudpickle.dumps((values, error_part, duration_s)))
    except Exception:
        pass
    kept: list[Any] = []
    for index, value in enumerate(values):
        try:
            cloudpickle.dumps(value)
        except Exception as problem:
            replacement = UnpicklableTaskError(
                f"the result of task {index} of its batch could not be sent back to the "
                f"caller: {type(problem).__name__}: {problem}"
            )
            error_part = (replacement, _format(replacement))
            break
        kept.append(value)
    if error_part is not None:
        try:
            cloudpickle.dumps(error_part[0])
        except Exception:
            original, text = error_part
            substitute = UnpicklableTaskError(
                f"{type(original).__name__}: {original} (the exception itself could not be "
                "pickled, so it is re-raised as this error)"
            )
            error_part = (substitute, text)
    return bytes(cloudpickle.dumps((kept, error_part, duration_s)))


def decode_outcome(payload: bytes | memoryview) -> tuple[list[Any], BaseException | None, float]:
    values, error_part, duration_s = pickle.loads(payload)
    error: BaseException | None = None
    if error_part is not None:
        error, text = error_part
        error.__cause__ = RemoteTraceback(text)
    return values, error, duration_s
