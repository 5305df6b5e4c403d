"""syrupy beside the plugin: ``--snapshot-update`` writes the snapshots a serial run writes, a
check run finds them all used, and a snapshot no test uses is reported (and deleted by
``--snapshot-update``) as serially; on every backend and start mode."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

pytest.importorskip("syrupy")
if int(version("syrupy").split(".")[0]) < 7:
    pytest.skip("syrupy 7 brought the xdist support compat/syrupy.py uses", allow_module_level=True)

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

TESTS = """
import pytest

@pytest.mark.parametrize("n", range(6))
def test_snap(n, snapshot):
    assert {{"n": n, "module": "{module}"}} == snapshot
"""

PARALLEL = {
    "loky-fork": ("--n-jobs=2", "--par-dist=load"),
    "loky-collect": ("--n-jobs=2", "--par-dist=load", "--par-start=collect"),
    "multiprocessing": ("--n-jobs=2", "--par-dist=load", "--par-backend=multiprocessing"),
    "threading": ("--n-jobs=2", "--par-backend=threading"),
}


def snapshots(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted((folder / "__snapshots__").iterdir())}


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)


@pytest.mark.parametrize("mode", list(PARALLEL))
def test_snapshots_are_written_used_and_cleaned_as_serially(
    pytester: pytest.Pytester, mode: str
) -> None:
    for module in ("a", "b"):
        pytester.makepyfile(**{f"test_{module}": TESTS.format(module=module)})
    args = PARALLEL[mode]
    assert run(pytester, "--snapshot-update").ret == 0
    serial = snapshots(pytester.path)
    assert len(serial) == 2 and all("# name: test_snap[5]" in text for text in serial.values())
    for path in (pytester.path / "__snapshots__").iterdir():
        path.unlink()

    written = run(pytester, "--snapshot-update", *args)
    assert written.ret == 0, written.stdout.str()
    written.stdout.fnmatch_lines(["*12 snapshots generated*"])
    assert snapshots(pytester.path) == serial

    checked = run(pytester, *args)
    assert checked.ret == 0, checked.stdout.str()  # every snapshot used: none reported unused
    checked.stdout.fnmatch_lines(["*12 snapshots passed*"])

    # A snapshot no test asserts: reported unused (exit 1), and deleted by --snapshot-update.
    stale = pytester.path / "__snapshots__" / "test_a.ambr"
    stale.write_text(stale.read_text() + "# name: test_gone\n  42\n# ---\n")
    outcomes = []
    for extra in ((), args):
        unused = run(pytester, *extra)
        outcomes.append(unused.ret)
        unused.stdout.fnmatch_lines(["*1 snapshot unused*"])
    assert outcomes == [1, 1]
    assert run(pytester, "--snapshot-update", *args).ret == 0
    assert snapshots(pytester.path) == serial
    leftovers = [p.name for p in (pytester.path / "__snapshots__").iterdir() if p.suffix != ".ambr"]
    assert leftovers == [], "no lock or temporary file is left"


def test_after_a_worker_died_no_snapshot_is_deleted(pytester: pytest.Pytester) -> None:
    for module in ("a", "b"):
        pytester.makepyfile(**{f"test_{module}": TESTS.format(module=module)})
    assert run(pytester, "--snapshot-update").ret == 0
    before = snapshots(pytester.path)
    # The worker that runs this dies with its report: the tests it ran used snapshots the
    # main process never hears of, so "unused" cannot be told.
    pytester.makepyfile(test_c="import os\n\ndef test_dies():\n    os._exit(3)\n")
    result = run(pytester, "--snapshot-update", "--n-jobs=2", "--par-dist=load")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*a worker died before it sent its syrupy report*"])
    assert snapshots(pytester.path) == before
