"""pytest-randomly beside the plugin: one seed for the whole run, so that every test draws the
values of a serial run with the printed seed, in every start mode and on every backend."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pytest_randomly", reason="tox -e randomly runs this module (.ci/run does)")

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

TESTS = """
import json, os, pathlib, random
import pytest

@pytest.mark.parametrize("n", range(8))
def test_draw(n):
    pathlib.Path(os.environ["DRAWS"], f"{n}.json").write_text(json.dumps(random.random()))
"""


def draws(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, float], str]:
    folder = pytester.path / "draws"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    pytester.makepyfile(test_draws=TESTS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRAWS", str(folder))
        # pytest-randomly imports numpy where it is installed, and numpy's BLAS starts threads
        # that keep workers from being forked; one BLAS thread keeps the fork case a fork.
        patch.setenv("OPENBLAS_NUM_THREADS", "1")
        patch.setenv("OMP_NUM_THREADS", "1")
        result = pytester.runpytest_subprocess(
            "-p", "randomly", "-p", "no:cacheprovider", *args, timeout=120
        )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    return {path.stem: json.loads(path.read_text()) for path in folder.iterdir()}, str(
        result.stdout.str()
    )


@pytest.mark.parametrize(
    "args",
    [
        ("--n-jobs=2",),
        ("--n-jobs=2", "--par-start=collect"),
        ("--n-jobs=2", "--par-backend=threading"),
    ],
    ids=["fork", "collect", "threading"],
)
def test_every_worker_uses_the_printed_seed(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    serial, _ = draws(pytester, "--randomly-seed=1234")
    parallel, output = draws(pytester, "--randomly-seed=1234", *args)
    assert "Using --randomly-seed=1234" in output
    assert len(serial) == 8
    assert parallel == serial
    if args == ("--n-jobs=2",):
        assert "workers forked after collection took over its session" in output


def test_a_seed_drawn_by_the_main_process_reaches_workers_that_collect(
    pytester: pytest.Pytester,
) -> None:
    parallel, output = draws(pytester, "--n-jobs=2", "--par-start=collect")
    seed = output.split("Using --randomly-seed=", 1)[1].split()[0]
    serial, _ = draws(pytester, f"--randomly-seed={seed}")
    assert parallel == serial
