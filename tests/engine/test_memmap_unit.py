"""Unit tests of the memmapping of large array arguments (pytest_parproc.parallel.memmap)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")

from pytest_parproc.parallel import memmap  # noqa: E402
from pytest_parproc.parallel.memmap import ArrayMemmapper, parse_nbytes  # noqa: E402

# 8000 bytes against a 1K threshold: large enough to be memmapped, small enough to be cheap.
THRESHOLD = "1K"
REPO_ROOT = Path(memmap.__file__).resolve().parents[2]


def big_array() -> Any:
    return np.arange(1000, dtype=np.float64)


def files_in(folder: str | None) -> list[str]:
    assert folder is not None
    return sorted(os.listdir(folder))


@pytest.fixture
def memmapper(tmp_path: Path) -> Iterator[ArrayMemmapper]:
    mapper = ArrayMemmapper(str(tmp_path), THRESHOLD, "r")
    yield mapper
    mapper.cleanup()


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that can import the package and nothing else."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("mmap_mode", "loaded_mode"), [("r", "r"), ("r+", "r+"), ("c", "c"), ("w+", "r+")]
)
def test_large_array_arrives_as_memmap(tmp_path: Path, mmap_mode: str, loaded_mode: str) -> None:
    mapper = ArrayMemmapper(str(tmp_path), THRESHOLD, mmap_mode)
    array = big_array()
    loaded = pickle.loads(mapper.dumps([(sum, (array,), {})]))[0][1][0]
    assert isinstance(loaded, np.memmap)
    # "w+" was the parent's writing: the worker must open the saved file, not a new empty one.
    assert loaded.mode == loaded_mode
    np.testing.assert_array_equal(loaded, array)
    assert mapper.folder is not None and Path(loaded.filename).parent == Path(mapper.folder)
    mapper.cleanup()


def test_nested_and_non_contiguous_arrays_keep_their_content(memmapper: ArrayMemmapper) -> None:
    fortran = np.asfortranarray(np.arange(2000, dtype=np.int32).reshape(40, 50))
    strided = np.arange(4000, dtype=np.float64)[::2]
    batch = [(max, (), {"data": {"nested": [fortran, (strided,)]}})]
    kwargs = pickle.loads(memmapper.dumps(batch))[0][2]
    loaded_fortran, (loaded_strided,) = kwargs["data"]["nested"]
    assert isinstance(loaded_fortran, np.memmap) and isinstance(loaded_strided, np.memmap)
    np.testing.assert_array_equal(loaded_fortran, fortran)
    np.testing.assert_array_equal(loaded_strided, strided)


def test_small_array_stays_a_plain_ndarray(memmapper: ArrayMemmapper) -> None:
    small = np.arange(100, dtype=np.float64)  # 800 bytes, under 1K
    loaded = pickle.loads(memmapper.dumps(small))
    assert type(loaded) is np.ndarray
    np.testing.assert_array_equal(loaded, small)
    assert memmapper.folder is None


def test_each_array_is_written_once(memmapper: ArrayMemmapper) -> None:
    first, second = big_array(), big_array() + 1
    memmapper.dumps([(sum, (first,), {}), (sum, (first,), {})])
    memmapper.dumps([(sum, (first, second), {})])
    loaded = pickle.loads(memmapper.dumps((first, second)))
    assert files_in(memmapper.folder) == ["0.npy", "1.npy"]
    np.testing.assert_array_equal(loaded[0], first)
    np.testing.assert_array_equal(loaded[1], second)


def test_a_freed_array_id_is_not_mistaken_for_a_new_array(memmapper: ArrayMemmapper) -> None:
    # Temporaries freed at once: CPython hands their memory, and so their id, to the next one.
    for value in range(20):
        loaded = pickle.loads(memmapper.dumps(np.full(1000, value, dtype=np.float64)))
        assert loaded[0] == value
    assert len(files_in(memmapper.folder)) == 20


def test_object_arrays_are_pickled_normally(memmapper: ArrayMemmapper) -> None:
    objects = np.array([{"item": index} for index in range(1000)], dtype=object)
    assert objects.nbytes > 1024
    loaded = pickle.loads(memmapper.dumps(objects))
    assert type(loaded) is np.ndarray
    assert loaded[999] == {"item": 999}
    assert memmapper.folder is None


def test_array_subclasses_are_pickled_normally(memmapper: ArrayMemmapper) -> None:
    # numpy.save would drop the mask: a subclass must keep its own pickling.
    masked = np.ma.masked_array(big_array(), mask=np.arange(1000) % 2 == 0)
    loaded = pickle.loads(memmapper.dumps(masked))
    assert isinstance(loaded, np.ma.MaskedArray)
    np.testing.assert_array_equal(loaded.mask, masked.mask)
    assert memmapper.folder is None


def test_a_memmap_of_a_users_file_travels_by_reference(
    memmapper: ArrayMemmapper, tmp_path: Path
) -> None:
    """As joblib sends it: the worker opens the caller's file (and may write to it), header
    offset included; nothing is copied into the call's folder."""
    source = np.lib.format.open_memmap(
        tmp_path / "source.npy", mode="w+", dtype=np.float64, shape=(1000,)
    )
    source[:] = big_array()
    loaded = pickle.loads(memmapper.dumps(source))
    assert isinstance(loaded, np.memmap)
    assert Path(loaded.filename) == tmp_path / "source.npy"
    assert memmapper.folder is None
    np.testing.assert_array_equal(loaded, source)
    part = pickle.loads(memmapper.dumps(source[100:]))  # a part: memmapped as a copy
    assert memmapper.folder is not None and Path(part.filename).parent == Path(memmapper.folder)
    np.testing.assert_array_equal(part, source[100:])


@pytest.mark.parametrize(("max_nbytes", "mmap_mode"), [(None, "r"), (THRESHOLD, None)])
def test_memmapping_can_be_disabled(
    tmp_path: Path, max_nbytes: str | None, mmap_mode: str | None
) -> None:
    mapper = ArrayMemmapper(str(tmp_path), max_nbytes, mmap_mode)
    array = big_array()
    loaded = pickle.loads(mapper.dumps(array))
    assert type(loaded) is np.ndarray
    np.testing.assert_array_equal(loaded, array)
    assert mapper.folder is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1M", 1024**2),
        ("10K", 10 * 1024),
        ("1G", 1024**3),
        ("1.5k", 1536),
        ("1000", 1000),
        (1000, 1000),
        (0, 0),
        (None, None),
    ],
)
def test_parse_nbytes_accepts_joblib_forms(value: int | str | None, expected: int | None) -> None:
    assert parse_nbytes(value) == expected


@pytest.mark.parametrize("value", ["abc", -1, "1X", "", "-1M", True, 1.5])
def test_parse_nbytes_rejects_other_values(value: Any) -> None:
    with pytest.raises(ValueError, match=r"max_nbytes") as raised:
        parse_nbytes(value)
    message = str(raised.value)
    assert repr(value) in message
    assert "'1M'" in message  # the accepted forms are named


def test_invalid_max_nbytes_is_rejected_by_the_constructor(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'1X'"):
        ArrayMemmapper(str(tmp_path), "1X", "r")


@pytest.mark.parametrize("mmap_mode", ["w", "rw", ""])
def test_invalid_mmap_mode_is_rejected(tmp_path: Path, mmap_mode: str) -> None:
    with pytest.raises(ValueError, match=rf"mmap_mode {mmap_mode!r}.*'r\+'"):
        ArrayMemmapper(str(tmp_path), THRESHOLD, mmap_mode)


def test_cleanup_removes_the_folder_and_is_idempotent(tmp_path: Path) -> None:
    ArrayMemmapper(str(tmp_path), THRESHOLD, "r").cleanup()  # nothing dumped: nothing to do
    mapper = ArrayMemmapper(str(tmp_path), THRESHOLD, "r")
    array = big_array()
    mapper.dumps(array)
    folder = mapper.folder
    assert folder is not None and os.path.isdir(folder)
    mapper.cleanup()
    assert not os.path.exists(folder)
    assert mapper.folder is None
    mapper.cleanup()
    # Dumping after cleanup saves the array again instead of pointing at a removed file.
    loaded = pickle.loads(mapper.dumps(array))
    np.testing.assert_array_equal(loaded, array)
    mapper.cleanup()


def test_a_loaded_memmap_survives_cleanup(tmp_path: Path) -> None:
    # POSIX keeps an unlinked file's pages while a mapping holds them: cleanup may run while
    # a worker still reads its arguments.
    mapper = ArrayMemmapper(str(tmp_path), THRESHOLD, "r")
    array = big_array()
    loaded = pickle.loads(mapper.dumps(array))
    mapper.cleanup()
    np.testing.assert_array_equal(loaded, array)


def test_temp_folder_argument_is_honoured(tmp_path: Path) -> None:
    base = tmp_path / "not" / "yet" / "there"
    mapper = ArrayMemmapper(str(base), THRESHOLD, "r")
    mapper.dumps(big_array())
    assert mapper.folder is not None
    assert Path(mapper.folder).parent == base
    assert Path(mapper.folder).name.startswith("parproc_memmap_")
    mapper.cleanup()


@pytest.mark.parametrize("variable", ["PYTEST_PARPROC_TEMP_FOLDER", "JOBLIB_TEMP_FOLDER"])
def test_environment_variable_sets_the_default_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv("PYTEST_PARPROC_TEMP_FOLDER", raising=False)
    monkeypatch.delenv("JOBLIB_TEMP_FOLDER", raising=False)
    monkeypatch.setenv(variable, str(tmp_path))
    mapper = ArrayMemmapper(None, THRESHOLD, "r")
    mapper.dumps(big_array())
    assert mapper.folder is not None and Path(mapper.folder).parent == tmp_path
    mapper.cleanup()


def test_our_environment_variable_wins_over_joblibs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_PARPROC_TEMP_FOLDER", str(tmp_path / "ours"))
    monkeypatch.setenv("JOBLIB_TEMP_FOLDER", str(tmp_path / "joblib"))
    assert memmap._default_base_folder() == str(tmp_path / "ours")


def test_default_base_is_shared_memory_or_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_PARPROC_TEMP_FOLDER", raising=False)
    monkeypatch.delenv("JOBLIB_TEMP_FOLDER", raising=False)
    assert memmap._default_base_folder(str(tmp_path / "missing")) == tempfile.gettempdir()
    assert memmap._default_base_folder() in ("/dev/shm", tempfile.gettempdir())


def test_lambdas_in_the_batch_are_pickled_by_value(memmapper: ArrayMemmapper) -> None:
    offset = 7.0
    batch: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
        (lambda values: float(values.sum()) + offset, (big_array(),), {})
    ]
    function, args, kwargs = pickle.loads(memmapper.dumps(batch))[0]
    assert isinstance(args[0], np.memmap)
    assert function(*args, **kwargs) == float(big_array().sum()) + offset


def test_a_fresh_worker_loads_the_batch_with_nothing_imported(
    memmapper: ArrayMemmapper, tmp_path: Path
) -> None:
    array = big_array()
    batch: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
        (lambda values: float(values.sum()), (array,), {})
    ]
    (tmp_path / "batch.pkl").write_bytes(memmapper.dumps(batch))
    completed = run_python(
        """
        import pickle, sys
        assert "numpy" not in sys.modules
        with open("batch.pkl", "rb") as file:
            [(function, args, kwargs)] = pickle.loads(file.read())
        print(type(args[0]).__name__, args[0].mode, function(*args, **kwargs))
        """,
        tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["memmap", "r", str(float(array.sum()))]


def test_the_module_imports_and_dumps_without_numpy(tmp_path: Path) -> None:
    completed = run_python(
        """
        import pickle, sys
        from pytest_parproc.parallel.memmap import ArrayMemmapper
        mapper = ArrayMemmapper(None, "1K", "r")
        data = pickle.loads(mapper.dumps([(len, (list(range(5000)),), {})]))
        assert "numpy" not in sys.modules, "numpy was imported"
        print(data[0][0](*data[0][1]), mapper.folder)
        """,
        tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["5000", "None"]
