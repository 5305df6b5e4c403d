"""Replacing large numpy array arguments by memory maps while a batch of tasks is pickled."""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import tempfile
import threading
from typing import Any

import cloudpickle

from .tasks import TEMPORARY_PREFIX, reopen_reduce

__all__ = ["ArrayMemmapper", "parse_nbytes"]

_MMAP_MODES = (None, "r", "r+", "w+", "c")
_TEMP_FOLDER_ENV_VARS = ("PYTEST_PARPROC_TEMP_FOLDER", "JOBLIB_TEMP_FOLDER")

_SHARED_MEMORY_FOLDER = "/dev/shm"
# joblib's rule (`joblib._memmapping_reducer._get_temp_dir`): a container's /dev/shm is often
# 64 MiB, and a full tmpfs fails the write with ENOSPC; below this much free space use the disk.
_SHARED_MEMORY_MIN_FREE_NBYTES = 2 * 1024**3
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}
_NBYTES_PATTERN = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([KMG]?)", re.IGNORECASE)
_ACCEPTED_NBYTES = "a non-negative int, a string like '1000', '10K', '1M' or '1G', or None"


def parse_nbytes(value: int | str | None) -> int | None:
    """Turn joblib's ``max_nbytes`` into bytes (``"1M"`` is 1024**2); None stays None."""
    if value is None:
        return None
    # bool is an int subclass; True meaning "1 byte" would only ever be a mistake.
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"invalid max_nbytes {value!r}: expected {_ACCEPTED_NBYTES}")
        return value
    if isinstance(value, str):
        match = _NBYTES_PATTERN.fullmatch(value.strip())
        if match is not None:
            number, unit = match.groups()
            return int(float(number) * _UNITS.get(unit.upper(), 1))
    raise ValueError(f"invalid max_nbytes {value!r}: expected {_ACCEPTED_NBYTES}")


def _load_memmap(path: str, mmap_mode: str) -> Any:
    """Worker side: open an array the parent saved; the pickle points here by reference."""
    # Imported here: a worker must not need numpy before it meets an array.
    import numpy

    load: Any = numpy.load  # its stubs want a Literal mode; ours was checked in the parent
    return load(path, mmap_mode=mmap_mode)


def _default_base_folder(shared_memory: str = _SHARED_MEMORY_FOLDER) -> str:
    """The folder that holds each call's own temporary folder when the caller names none."""
    for name in _TEMP_FOLDER_ENV_VARS:
        configured = os.environ.get(name)
        if configured:
            return os.path.expanduser(configured)
    if os.path.isdir(shared_memory) and os.access(shared_memory, os.W_OK | os.X_OK):
        try:
            stats = os.statvfs(shared_memory)
        except OSError:
            pass
        else:
            if stats.f_bavail * stats.f_frsize >= _SHARED_MEMORY_MIN_FREE_NBYTES:
                return shared_memory
    return tempfile.gettempdir()


class _ArrayPickler(cloudpickle.CloudPickler):  # type: ignore[misc]
    """A cloudpickle pickler that hands large arrays to its memmapper instead of copying them."""

    def __init__(self, file: io.BytesIO, memmapper: ArrayMemmapper, numpy: Any) -> None:
        super().__init__(file, protocol=cloudpickle.DEFAULT_PROTOCOL)
        self._memmapper = memmapper
        self._numpy = numpy

    def reducer_override(self, obj: object) -> Any:
        reduced = self._memmapper._reduce(obj, self._numpy)
        if reduced is not None:
            return reduced
        # cloudpickle's own override pickles lambdas and local functions by value.
        return super().reducer_override(obj)


class ArrayMemmapper:
    """Turns large numpy arrays into memmaps in a temporary folder while pickling a batch.

    Each distinct array is saved once per memmapper, as ``<folder>/<n>.npy``, however many
    tasks or batches carry it; the worker opens it with ``numpy.load(path, mmap_mode=...)``.
    Call :meth:`cleanup` when the parallel call is over. On Linux a worker that still holds
    one of these memmaps keeps reading it after the unlink: the pages live until unmapped.
    """

    def __init__(
        self, temp_folder: str | None, max_nbytes: int | str | None, mmap_mode: str | None
    ) -> None:
        if mmap_mode not in _MMAP_MODES:
            accepted = ", ".join(map(repr, _MMAP_MODES))
            raise ValueError(f"invalid mmap_mode {mmap_mode!r}: expected one of {accepted}")
        parsed = parse_nbytes(max_nbytes)
        self._temp_folder = temp_folder
        self._enabled = parsed is not None and mmap_mode is not None
        self._max_nbytes = parsed if parsed is not None else 0
        # "w+" means the parent writes the file, which it has by now; "w+" in numpy.load
        # would create a new file, so workers open it read-write as joblib does.
        self._load_mode = "r+" if mmap_mode == "w+" else mmap_mode
        self._folder: str | None = None
        # id -> (array, path); holding the array keeps its id from being reused by another one.
        self._saved: dict[int, tuple[object, str]] = {}
        self._count = 0
        # Batches may be pickled from more than one dispatching thread.
        self._lock = threading.Lock()

    @property
    def folder(self) -> str | None:
        """The folder created for this call, None until the first array is saved."""
        return self._folder

    def dumps(self, obj: object) -> bytes:
        """Cloudpickle ``obj``, each large array in it replaced by a memmap to open on load."""
        # A caller that never imported numpy cannot be passing arrays: skip the lookups.
        numpy = sys.modules.get("numpy")
        if numpy is None:
            data: bytes = cloudpickle.dumps(obj, protocol=cloudpickle.DEFAULT_PROTOCOL)
            return data
        buffer = io.BytesIO()
        _ArrayPickler(buffer, self, numpy).dump(obj)
        return buffer.getvalue()

    def cleanup(self) -> None:
        """Remove the folder and every array saved in it; safe to call more than once."""
        with self._lock:
            folder, self._folder = self._folder, None
            self._saved.clear()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _reduce(self, obj: object, numpy: Any) -> Any:
        """The reduce value that opens ``obj`` as a memmap, or None to pickle it as usual."""
        # Exact ndarray or a memmap only: numpy.save drops what a subclass adds (a masked
        # array's mask), and object arrays cannot be saved without pickling their items.
        if type(obj) is not numpy.ndarray and not isinstance(obj, numpy.memmap):
            return None
        array: Any = obj
        if isinstance(array, numpy.memmap):
            reopened = reopen_reduce(array)  # a user's own file: by reference, as joblib
            if reopened is not None:
                return reopened
        if not self._enabled or array.dtype.hasobject or array.nbytes <= self._max_nbytes:
            return None
        assert self._load_mode is not None  # (not _enabled without an mmap_mode)
        return _load_memmap, (self._save(array, numpy), self._load_mode)

    def _save(self, array: Any, numpy: Any) -> str:
        """Save ``array`` once and return its path; later calls return the same path."""
        with self._lock:
            saved = self._saved.get(id(array))
            if saved is not None:
                return saved[1]
            if self._folder is None:
                base = self._temp_folder or _default_base_folder()
                os.makedirs(base, exist_ok=True)
                self._folder = tempfile.mkdtemp(prefix=TEMPORARY_PREFIX, dir=base)
            path = os.path.join(self._folder, f"{self._count}.npy")
            self._count += 1
            # Not pickled: allow_pickle=False keeps the worker's load free of arbitrary code.
            numpy.save(path, array, allow_pickle=False)
            self._saved[id(array)] = (array, path)
            return path
