"""Large numpy arguments reach process workers as memmaps; small ones and threads are copied
or shared as usual."""

from __future__ import annotations

import os
from pathlib import Path

import engine_tasks as tasks
import pytest

from pytest_parproc import Parallel, delayed

np = pytest.importorskip("numpy")

LARGE = 2_000_000  # float64 items: 16 MB, far over the default max_nbytes of 1M


def memmap_folders(folder: Path) -> list[Path]:
    return list(folder.glob("parproc_memmap_*"))


def test_a_large_array_arrives_as_a_memmap_and_its_folder_is_removed(
    memmapping_backend: str, tmp_path: Path
) -> None:
    """A large array argument reaches the worker as numpy.memmap, backed by a file in a folder
    under temp_folder, with the same contents; the folder is removed when the call returns."""
    array = np.arange(LARGE, dtype=np.float64)
    results = Parallel(n_jobs=2, backend=memmapping_backend, temp_folder=str(tmp_path))(
        delayed(tasks.array_info)(array) for _ in range(4)
    )
    for type_name, filename, total in results:
        assert type_name == "memmap"
        assert filename is not None
        assert Path(filename).parent.parent == tmp_path
        assert Path(filename).parent.name.startswith("parproc_memmap_")
        assert total == float(array.sum())
    assert memmap_folders(tmp_path) == []


def test_a_small_array_is_copied_as_a_plain_array(memmapping_backend: str, tmp_path: Path) -> None:
    """An array under max_nbytes travels inside the pickle as a plain ndarray; no folder."""
    array = np.arange(10, dtype=np.float64)
    results = Parallel(n_jobs=2, backend=memmapping_backend, temp_folder=str(tmp_path))(
        delayed(tasks.array_info)(array) for _ in range(2)
    )
    assert results == [("ndarray", None, 45.0)] * 2
    assert memmap_folders(tmp_path) == []


def test_max_nbytes_none_disables_memmapping(memmapping_backend: str, tmp_path: Path) -> None:
    """max_nbytes=None sends even a large array as a plain ndarray."""
    array = np.arange(LARGE, dtype=np.float64)
    results = Parallel(
        n_jobs=2, backend=memmapping_backend, temp_folder=str(tmp_path), max_nbytes=None
    )(delayed(tasks.array_info)(array) for _ in range(2))
    assert results == [("ndarray", None, float(array.sum()))] * 2
    assert memmap_folders(tmp_path) == []


def test_mmap_mode_r_gives_the_worker_a_read_only_array(
    memmapping_backend: str, tmp_path: Path
) -> None:
    """With mmap_mode='r' the worker cannot write into the shared array; with 'c'
    (copy-on-write) it can, and the caller's array is unchanged either way."""
    array = np.ones(LARGE, dtype=np.float64)
    read_only = Parallel(
        n_jobs=2, backend=memmapping_backend, temp_folder=str(tmp_path), mmap_mode="r"
    )(delayed(tasks.write_raises)(array) for _ in range(2))
    assert read_only == [True, True]
    copy_on_write = Parallel(
        n_jobs=2, backend=memmapping_backend, temp_folder=str(tmp_path), mmap_mode="c"
    )(delayed(tasks.write_raises)(array) for _ in range(2))
    assert copy_on_write == [False, False]
    assert array[0] == 1.0
    assert memmap_folders(tmp_path) == []


def test_threading_passes_the_very_same_array(tmp_path: Path) -> None:
    """The threading backend shares memory: a task gets the caller's array object itself,
    neither a copy nor a memmap, and no file is written."""
    array = np.arange(LARGE, dtype=np.float64)
    results = Parallel(n_jobs=2, backend="threading", temp_folder=str(tmp_path))(
        delayed(tasks.object_id)(array) for _ in range(4)
    )
    assert results == [id(array)] * 4
    assert os.listdir(tmp_path) == []
