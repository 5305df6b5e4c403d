"""The options of what a run shows of itself: ``--par-progress``, ``--par-slow``,
``--par-report`` and ``--par-trace``, resolved and checked like every other option."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..options import Setting, add_ini, choice, lookup, seconds

PROGRESS = Setting(
    "--par-progress",
    "par_progress",
    "PYTEST_PARPROC_PROGRESS",
    "live progress of a parallel run: auto (default: on a terminal, a status line kept at the "
    "bottom, with the tests done, failures, each worker's current test and the time left; "
    "elsewhere, such as CI logs, only a line for each test slower than --par-slow), bar (the "
    "status line even where the output is not a terminal) or off.",
    metavar="MODE",
)
SLOW = Setting(
    "--par-slow",
    "par_slow",
    "PYTEST_PARPROC_SLOW",
    "seconds after which a test still running gets a SLOW line naming its worker (default 60).",
    metavar="SECONDS",
    numeric=True,
)
REPORT = Setting(
    "--par-report",
    "par_report",
    "PYTEST_PARPROC_REPORT",
    "write the run's timeline to this HTML file: one self-contained page (nothing fetched) "
    "with a lane per worker and a bar per test.",
    metavar="PATH",
)
TRACE = Setting(
    "--par-trace",
    "par_trace",
    "PYTEST_PARPROC_TRACE",
    "write the run's events to this JSON file in the Chrome Trace Event format (Perfetto, "
    "chrome://tracing): a thread per worker, an event per test phase.",
    metavar="PATH",
)
SETTINGS = (PROGRESS, SLOW, REPORT, TRACE)
PROGRESS_MODES = ("auto", "bar", "off")
DEFAULT_SLOW_S = 60.0


@dataclass(frozen=True)
class ReportOptions:
    progress: str = "auto"
    slow_s: float = DEFAULT_SLOW_S
    #: where to write the page and the trace (absolute), or None
    page: Path | None = None
    trace: Path | None = None

    @property
    def records(self) -> bool:
        """Whether the run's events are kept (for a file written at its end)."""
        return self.page is not None or self.trace is not None


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("parproc")
    for setting in SETTINGS:
        help_text = f"{setting.help} [ini: {setting.ini}; env: {setting.env}]"
        group.addoption(
            setting.flag, dest=setting.dest, default=None, metavar=setting.metavar, help=help_text
        )
        add_ini(parser, setting)


def resolve(config: pytest.Config) -> ReportOptions:
    sources: dict[str, str] = {}
    return ReportOptions(
        progress=choice(config, PROGRESS, PROGRESS_MODES, sources, "progress"),
        slow_s=seconds(config, SLOW, sources, "slow") or DEFAULT_SLOW_S,
        page=_output_path(config, REPORT),
        trace=_output_path(config, TRACE),
    )


def _output_path(config: pytest.Config, setting: Setting) -> Path | None:
    """A file to write at the end of the run: checked now, so that a typo costs no run. A
    relative path is taken from where pytest was started, or, in an ini file, from its folder
    (as pytest takes its own paths in ini files)."""
    found = lookup(config, setting)
    if found is None:
        return None
    raw, source = found
    text = os.path.expanduser(raw.strip())
    if not text:
        raise pytest.UsageError(f"{source}: expected a file path, got {raw!r}")
    base = config.invocation_params.dir
    if source.startswith("ini option") and config.inipath is not None:
        base = config.inipath.parent
    path = Path(base, text).resolve()
    if path.is_dir():
        raise pytest.UsageError(f"{source}: {path} is a folder; expected a file path")
    if not path.parent.is_dir():
        raise pytest.UsageError(
            f"{source}: the folder {path.parent} does not exist (for {path}); create it, or "
            "give a path in an existing folder"
        )
    if not os.access(path.parent, os.W_OK):
        raise pytest.UsageError(f"{source}: the folder {path.parent} is not writable")
    return path
