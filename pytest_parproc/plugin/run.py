"""The run base that both runners' controllers extend: pytest's test loop taken over with its
own checks, the stop rule, the closing summary and the timing table."""

from __future__ import annotations

from typing import Any

import pytest

from .messages import StopRequest
from .options import ParprocOptions
from .report.view import view_of
from .shared.main import SharedRun
from .signals import sigterm_as_interrupt
from .stopping import stop_wanted
from .timing import RunTiming


class RunController:
    """Registered in the main process when the plugin is active; owns the test loop. A runner
    implements ``_run`` (run ``session.items``, replay their reports, set ``timing``) and may
    add to the summary (``_write_errors``, ``_write_notes``)."""

    def __init__(self, config: pytest.Config, options: ParprocOptions) -> None:
        self.config = config
        self.options = options
        self.timing: RunTiming | None = None
        #: (worker id, traceback) of errors while a worker, or the main thread, ended its tests
        self.finish_errors: list[tuple[str, str]] = []
        #: what a test asked of the whole run (pytest.exit, KeyboardInterrupt)
        self.stop_request: StopRequest | None = None
        #: no new test starts
        self.stopping = False
        #: why pytest's own loop ran the tests, one after another in this process (or None)
        self.serial_reason: str | None = None
        #: the run's shared fixtures (``plugin/shared``)
        self.shared = SharedRun(config, options.timeout_s, self.limit_text())
        #: what the run shows of itself (``plugin/report``): told which worker ran what
        self.view = view_of(config)

    # -- pytest hooks -----------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        self.serial_reason = self._serial_reason(session)
        if self.serial_reason is not None:
            return None  # pytest's own loop runs them
        # The checks of pytest's own pytest_runtestloop, which this one replaces.
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            count = session.testsfailed
            raise session.Interrupted(f"{count} error{'s' if count != 1 else ''} during collection")
        if session.config.option.collectonly:
            return True
        with sigterm_as_interrupt():
            try:
                self.shared.set_up(session)
                self._run(session)
            finally:
                self.shared.tear_down()
                count = self.shared.values
                if self.timing is not None and count:
                    self.timing.add_shared(count, self.shared.setup_s, self.shared.teardown_s)
        if self.stop_request is not None:
            if self.stop_request.kind == "exit":
                pytest.exit(self.stop_request.message, self.stop_request.returncode)
            raise KeyboardInterrupt(self.stop_request.message)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
        return True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.serial_reason is not None:
            terminalreporter.write_line(
                f"parproc: the tests ran one after another in this process ({self.serial_reason})"
            )
        self._write_errors(terminalreporter)
        self._write_table(terminalreporter)
        if self.timing is not None and self.config.get_verbosity() >= -1:
            self._write_notes(terminalreporter)

    # -- for the runners ----------------------------------------------------------------------
    def _run(self, session: pytest.Session) -> None:
        raise NotImplementedError

    def _serial_reason(self, session: pytest.Session) -> str | None:
        """Why this run's tests cannot run in parallel at all, or None (they can)."""
        return None

    def _stop_wanted(self, session: pytest.Session) -> bool:
        return stop_wanted(session, self.stop_request)

    def limit_text(self) -> str:
        """The time limit, and where it was set: ``option --par-timeout = 2 s``."""
        source = self.options.sources.get("timeout", "--par-timeout")
        if self.options.timeout_s is None:
            return f"{source} not set"
        return f"{source} = {self.options.timeout_s:g} s"

    def _write_errors(self, writer: Any) -> None:
        for worker_id, text in self.finish_errors:
            writer.write_sep("-", f"parproc: error while worker {worker_id} ended its session")
            writer.write_line(text.rstrip())

    def _write_notes(self, writer: Any) -> None:
        """Lines after the timing table (the runner's own)."""

    def _write_table(self, writer: Any) -> None:
        if self.timing is None or not self.timing.workers:
            return
        verbosity = self.config.get_verbosity()
        if verbosity < -1:
            return
        lines = self.timing.lines(verbosity, self.options.backend)
        if verbosity >= 0:
            count = len(self.timing.workers)
            writer.write_sep("=", f"parproc: {count} worker{'s' if count != 1 else ''}", bold=True)
        for line in lines:
            writer.write_line(line)
