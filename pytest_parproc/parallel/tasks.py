"""Running a batch of tasks, and the codec for outcomes that cross a process boundary.

A worker process imports this module before its first task, so it imports little: no
``typing`` at run time, ``traceback`` and ``cloudpickle`` only when an error needs them.
"""

from __future__ import annotations

import io
import pickle
import sys
import time

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
        _ResultPickler(file, numpy).dump((values, error_part, duration_s))
        return file.getvalue()
    except Exception:
        return _encode_with_fallback(values, error_part, duration_s)


#: the start of the name of a call's folder of memmapped arguments (``memmap.ArrayMemmapper``)
TEMPORARY_PREFIX = "parproc_memmap_"


def memmap_reduce(obj: object, numpy: Any) -> Any:
    """How a memmap in a task's result travels back, as joblib sends it (numpy's own pickle of
    a memmap loses a non-native byte order and garbles the values): one of the call's own
    temporary files (an argument it was given) as a plain array, since the folder goes at the
    call's end; a whole memmap of any other file as that file reopened in the caller; a part
    of one as an array. None for anything that is not a memmap."""
    if not isinstance(obj, numpy.memmap):
        return None
    reopened = reopen_reduce(obj)
    if reopened is not None:
        return reopened
    return numpy.asarray(obj).__reduce_ex__(pickle.HIGHEST_PROTOCOL)


def reopen_reduce(memmap: Any) -> Any:
    """The reduce value that reopens ``memmap`` by its file name on the other side, as joblib
    sends a user's memmaps both ways (so that workers write to the caller's file): for a whole
    memmap of a file that is not one of the engine's temporary ones; None otherwise."""
    import mmap
    import os

    filename = getattr(memmap, "filename", None)
    if filename is None or not isinstance(memmap.base, mmap.mmap):
        return None  # not backed by a file, or a part of one
    if os.path.basename(os.path.dirname(filename)).startswith(TEMPORARY_PREFIX):
        return None  # the call's own copy of an argument: its folder goes at the call's end
    order = "F" if memmap.flags.f_contiguous and not memmap.flags.c_contiguous else "C"
    mode = "r+" if memmap.mode == "w+" else memmap.mode  # (w+ would empty the file)
    return _reopen_memmap, (filename, memmap.dtype, mode, memmap.offset, memmap.shape, order)


def _reopen_memmap(
    filename: str, dtype: Any, mode: str, offset: int, shape: tuple[int, ...], order: str
) -> Any:
    import numpy

    reopen: Any = numpy.memmap  # its stubs want Literal modes; these came from a memmap
    return reopen(filename, dtype=dtype, mode=mode, offset=offset, shape=shape, order=order)


class _ResultPickler(pickle.Pickler):
    """The pickler of results where numpy is loaded: memmaps go as ``memmap_reduce`` says."""

    def __init__(self, file: io.BytesIO, numpy: Any) -> None:
        super().__init__(file, pickle.HIGHEST_PROTOCOL)
        self._numpy = numpy
        self._memmap = numpy.memmap

    def reducer_override(self, obj: object) -> Any:
        if not isinstance(obj, self._memmap):  # (asked for every object of every result)
            return NotImplemented
        return memmap_reduce(obj, self._numpy)


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
        from .errors import UnpicklableTaskError

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
    from .errors import UnpicklableTaskError

    try:
        return _cloud_dumps((values, error_part, duration_s))
    except Exception:
        pass
    kept: list[Any] = []
    for index, value in enumerate(values):
        try:
            _cloud_dumps(value)
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
            _cloud_dumps(error_part[0])
        except Exception:
            original, text = error_part
            substitute = UnpicklableTaskError(
                f"{type(original).__name__}: {original} (the exception itself could not be "
                "pickled, so it is re-raised as this error)"
            )
            error_part = (substitute, text)
    return _cloud_dumps((kept, error_part, duration_s))


def _cloud_dumps(obj: object) -> bytes:
    """cloudpickle, with memmaps sent as ``memmap_reduce`` says where numpy is loaded."""
    import cloudpickle

    numpy = sys.modules.get("numpy")
    if numpy is None:
        return bytes(cloudpickle.dumps(obj))

    class Pickler(cloudpickle.Pickler):  # type: ignore[misc]
        def reducer_override(self, value: object) -> Any:
            reduced = memmap_reduce(value, numpy)
            return super().reducer_override(value) if reduced is None else reduced

    file = io.BytesIO()
    Pickler(file, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return file.getvalue()


def decode_outcome(payload: bytes | memoryview) -> tuple[list[Any], BaseException | None, float]:
    values, error_part, duration_s = pickle.loads(payload)
    error: BaseException | None = None
    if error_part is not None:
        error, text = error_part
        from .errors import RemoteTraceback  # (here: a worker need not import the errors)

        error.__cause__ = RemoteTraceback(text)
    return values, error, duration_s
