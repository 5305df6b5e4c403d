"""Helpers for tests that run pytest as a process of their own and signal it: start it with
pytest's usual Ctrl-C, and check that no process it started is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from processes import still_running as still_running


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_pytest(folder: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python -m pytest ARGS`` in ``folder``, output piped. A shell starts background jobs
    with SIGINT ignored, and Python keeps it ignored: the run gets pytest's usual Ctrl-C,
    however this test session was started."""
    environment = {**os.environ, **env}
    environment.pop("PYTEST_ADDOPTS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=folder,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_default_sigint,
    )


def pids_in(folder: Path) -> set[int]:
    """The process ids that tests recorded as file names (``<pid>`` or ``<pid>-<more>``)."""
    return {int(name.split("-")[0]) for name in os.listdir(folder)}
