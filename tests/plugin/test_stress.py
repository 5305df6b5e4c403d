"""A suite with failures, errors, crashes and hangs planted among passing tests, under each
backend (no crashes on threads, which share the process): every test id gets exactly one final
outcome, the counts are the planted ones, the exit code is right, and no process is left
behind. And Ctrl-C at random moments of a run.

300 tests on 2 workers by default; ``PARPROC_STRESS_TESTS=2000`` (or more) for the long version,
``PARPROC_STRESS_JOBS=16`` for more workers."""

from __future__ import annotations

import os
import random
import re
import signal
import textwrap
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter

import pytest
from compare import BACKENDS, PROCESS_BACKENDS, run_suite
from processes_left import pids_in, start_pytest, still_running

pytestmark = pytest.mark.slow  # waits on purpose: planted hangs and Ctrl-C at random moments

pytest_plugins = ["pytester"]

N_TESTS = int(os.environ.get("PARPROC_STRESS_TESTS", "300"))
N_JOBS = int(os.environ.get("PARPROC_STRESS_JOBS", "2"))
N_MODULES = 10
CRASHES = (7, 150)  # planted by case number (``n`` below, over the whole suite)
HANGS = (40, 260)

MODULE = textwrap.dedent(
    """
    import os, pathlib, time
    import pytest

    FIRST = {first}
    CRASHES = {crashes}
    HANGS = {hangs}

    @pytest.fixture
    def planted(request):
        n = request.param
        pathlib.Path(os.environ["PIDS"], str(os.getpid())).touch()
        if n % 23 == 5:
            raise RuntimeError(f"planted setup error {{n}}")
        return n

    @pytest.mark.parametrize("planted", range(FIRST, FIRST + {count}), indirect=True)
    def test_case(planted):
        n = planted
        if n in CRASHES:
            os._exit(3)
        if n in HANGS:
            time.sleep(300)
        assert n % 17 != 3, f"planted failure {{n}}"
    """
)


def planted_outcomes(crashes: tuple[int, ...]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for n in range(N_TESTS):
        if n % 23 == 5:
            outcomes["error"] += 1
        elif n in crashes or n in HANGS or n % 17 == 3:
            outcomes["failed"] += 1
        else:
            outcomes["passed"] += 1
    return outcomes


def final_outcome(phases: list[str]) -> str:
    """One outcome per test, as pytest counts it: an error in setup or teardown, else the
    call's outcome."""
    by_phase = dict(phase.split(":") for phase in phases)
    if by_phase.get("setup") == "failed":
        return "error"
    if by_phase.get("call") == "failed":
        return "failed"
    return "passed" if by_phase.get("call") == "passed" else f"odd {phases}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_planted_faults_each_get_exactly_one_outcome(
    pytester: pytest.Pytester, backend: str
) -> None:
    # A crash (os._exit) ends the threading backend's one process: no crashes there.
    crashes = CRASHES if backend in PROCESS_BACKENDS else ()
    per_module = N_TESTS // N_MODULES
    for module in range(N_MODULES):
        source = MODULE.format(
            first=module * per_module, count=per_module, crashes=crashes, hangs=HANGS
        )
        pytester.makepyfile(**{f"test_stress_{module:02d}": source})
    pids = pytester.path / "pids"
    pids.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIDS", str(pids))
        run = run_suite(pytester, "--par-timeout=3", n_jobs=N_JOBS, backend=backend)
    assert run.exitstatus == pytest.ExitCode.TESTS_FAILED, run.output[-3000:]
    assert len(run.tests) == N_TESTS
    for nodeid, phases in run.tests.items():
        assert [phase.split(":")[0] for phase in phases] in (
            ["setup", "call", "teardown"],
            ["setup", "teardown"],
        ), (nodeid, phases)
    assert Counter(final_outcome(phases) for phases in run.tests.values()) == planted_outcomes(
        crashes
    )
    assert len(run.junit) == N_TESTS
    assert not still_running(pids_in(pids))


SLOW_SUITE = textwrap.dedent(
    """
    import os, pathlib, time
    import pytest

    @pytest.mark.parametrize("n", range({count}))
    def test_step(n):
        pathlib.Path(os.environ["PIDS"], str(os.getpid())).touch()
        time.sleep(0.05)
    """
)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigint_at_a_random_moment(pytester: pytest.Pytester, backend: str, seed: int) -> None:
    """Ctrl-C anywhere in a run (start-up, collection, tests, the end): exit code 2, pytest's
    summary, and no worker left behind."""
    pytester.makepyfile(test_slow=SLOW_SUITE.format(count=60 * N_JOBS))  # 3 s per worker
    pids = pytester.path / "pids"
    pids.mkdir()
    env = {**os.environ, "PIDS": str(pids)}
    env.pop("PYTEST_ADDOPTS", None)
    junit = pytester.path / "junit.xml"
    args = (f"--n-jobs={N_JOBS}", f"--par-backend={backend}", f"--junitxml={junit}")
    # From pytest's first line on (before it, Ctrl-C hits Python's start-up, not pytest):
    # the run takes 3 s or more after it.
    delay_s = random.Random(seed).uniform(0.0, 2.0)
    process = start_pytest(pytester.path, *args, env={"PIDS": str(pids)})
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        time.sleep(delay_s)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        output = first + rest
    finally:
        if process.poll() is None:
            process.kill()
    text = output.decode(errors="replace")
    assert process.returncode == pytest.ExitCode.INTERRUPTED, text[-3000:]
    # What finished before the interrupt is kept: the summary counts it, junitxml holds it.
    found = re.search(r"(\d+) passed", text.splitlines()[-1])
    passed = int(found.group(1)) if found else 0
    cases = list(ElementTree.parse(junit).getroot().iter("testcase"))
    assert sum(1 for case in cases if case.get("name")) == passed, text[-3000:]
    # A test the interrupt cut short has its setup logged and nothing after it: junitxml
    # writes it as a case without a name, as in a serial run (one per worker at most).
    assert sum(1 for case in cases if not case.get("name")) <= N_JOBS, text[-3000:]
    assert not still_running(pids_in(pids)), text[-3000:]
