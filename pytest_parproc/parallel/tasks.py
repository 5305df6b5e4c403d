"""Tasks: ``delayed``, running a batch of them, and the codec for outcomes crossing processes."""

from __future__ import annotations

import functools
import pickle
import time
import traceback
from collections.abc import Callable
from typing import Any, ParamSpec

from .backends.base import Task
from .errors import RemoteTraceback, UnpicklableTaskError

P = ParamSpec("P")


def delayed(function: Callable[P, Any]) -> Callable[P, Task]:
    """Capture a call without making it: ``delayed(f)(x, y=1)`` is ``(f, (x,), {"y": 1})``."""

    @functools.wraps(function)
    def capture(*args: P.args, **kwargs: P.kwargs) -> Task:
        return function, args, kwargs

    return capture


def run_tasks(
    tasks: list[Task], on_task_start: Callable[[], None] | None = None
) -> tuple[list[Any], BaseException | None]:
    """Run tasks in order; stop at the first exception, which is returned, not raised."""
    values: list[Any] = []
    append = values.append
    for function, args, kwargs in tasks:
        if on_task_start is not None:
            on_task_start()
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
    except BaseException as error:
        return encode_outcome([], error, 0.0), 1
    values, error = run_tasks(tasks)
    return encode_outcome(values, error, time.perf_counter() - started), len(tasks)


def encode_outcome(values: list[Any], error: BaseException | None, duration_s: float) -> bytes:
    """Serialize what a batch produced; an error travels with its formatted traceback."""
    error_part: tuple[BaseException, str] | None = None
    if error is not None:
        error_part = (error, "".join(traceback.format_exception(error)))
    try:
        return pickle.dumps((values, error_part, duration_s), pickle.HIGHEST_PROTOCOL)
    except Exception:
        return _encode_with_fallback(values, error_part, duration_s)


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
            error_part = (replacement, "".join(traceback.format_exception(replacement)))
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


def decode_outcome(payload: bytes) -> tuple[list[Any], BaseException | None, float]:
    values, error_part, duration_s = pickle.loads(payload)
    error: BaseException | None = None
    if error_part is not None:
        error, text = error_part
        error.__cause__ = RemoteTraceback(text)
    return values, error, duration_s
