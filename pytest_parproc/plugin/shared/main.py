"""The main process's side of shared fixtures: set each needed value up once before the tests
start, hand the values to the workers, tear them down once after every worker has finished."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from ..pytest_internals import fixture_runs
from ..replay import HOLD_LAST_TEARDOWN_KEY, REPLAYER_KEY
from ..report.events import SHARED_LANE
from ..report.view import view_of
from ..signals import main_thread_limit
from .instances import PROVIDER_NAME, Instance, Provider, definition_of
from .marking import configured_names, is_shared
from .plan import PLAN_KEY, Need, Plan, plan_and_check, shared_in, value_key

if sys.version_info < (3, 11):  # pragma: no cover - pytest depends on the backport there
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

#: what a setup's output is made of, in the order of pytest's report sections
_OUTPUTS = ("stdout", "stderr", "log")

#: the plugin name of ``SharedRun`` (main process only)
RUN_NAME = "parproc-shared-run"


class SharedRun:
    """Registered in the main process for the run: sets up, reports, tears down."""

    def __init__(self, config: pytest.Config, limit_s: float | None, limit: str) -> None:
        self.config = config
        self.names: frozenset[str] = frozenset()  # (opted in by name: read at set-up)
        self.limit_s = limit_s
        self.limit = limit  # ``--par-timeout = 5 s``, for messages
        self.plan = Plan()
        #: every value set up, by number, in the order their setups ended (teardown goes the
        #: other way)
        self.instances: dict[int, Instance] = {}
        self.provider: Provider | None = None
        #: how many values were set up
        self.values = 0
        self.setup_s = 0.0
        self.teardown_s = 0.0
        self._ran: list[Any] = []  # definitions whose setup ended while setting up, in order
        self._last_nodeid: str | None = None
        self._session: pytest.Session | None = None
        #: node id -> the set-up output its reports carry
        self._attached: dict[str, list[tuple[str, str]]] = {}

    # -- set-up -------------------------------------------------------------------------------
    def set_up(self, session: pytest.Session) -> None:
        """Set every value the selected tests need up, in collection order of their first test,
        then detach them from pytest's definitions and register the provider."""
        self.names = frozenset(configured_names(self.config))
        plan = self.config.stash.get(PLAN_KEY, None) or plan_and_check(session, self.names)
        self.plan = plan
        if not plan.needs:
            # (still answered: a shared fixture that a test reaches only dynamically is an error)
            self._register(Provider(self.names, {}, {}, []))
            return
        self._session = session
        self.config.pluginmanager.register(self, RUN_NAME)
        self.config.stash[HOLD_LAST_TEARDOWN_KEY] = True  # (see ``_report``)
        started = time.perf_counter()
        fixture_runs.enter_session(session)
        session.addfinalizer(self._at_session_teardown)
        watch = _SetupPhase(self)
        self.config.pluginmanager.register(watch)
        try:
            for need in plan.needs:
                if need.number not in self.instances:
                    self._set_up(need)
        finally:
            self.config.pluginmanager.unregister(watch)
            self.setup_s = time.perf_counter() - started
            self.values = len(self.instances)
            provider = Provider(self.names, self.instances, plan.by_test, plan.tables)
            provider.ran_in_main = list(dict.fromkeys(self._ran))
            self._register(provider)
            if self.config.option.setupshow:
                self.config.get_terminal_writer().line()  # (the progress on a line of its own)

    def _register(self, provider: Provider) -> None:
        self.provider = provider
        self.config.pluginmanager.register(provider, PROVIDER_NAME)

    def _set_up(self, need: Need) -> None:
        __tracebackhide__ = True  # (the error's traceback is shown on the tests, as serially)
        item, fixturedef = need.item, need.fixturedef
        shared = shared_in(item, self.names)
        known = self.instances
        for _name, _depth, definition in shared:  # values set up already: cached, not run again
            number = self.plan.numbers[value_key(item, definition)]
            if number in known:
                fixture_runs.attach(definition, known[number].cached, [])
        first = len(self._ran)
        error: BaseException | None = None
        request = fixture_runs.subrequest(item, fixturedef)
        message = self._limit_message(need.name, "set up")
        with (
            fixture_runs.captured_output(self.config) as output,
            fixture_runs.captured_logs(self.config) as logs,
        ):
            try:
                with (
                    fixture_runs.warnings_of(self.config, item),
                    main_thread_limit(self.limit_s, message),
                    view_of(self.config).span(f"set up {need.name}", SHARED_LANE),
                ):
                    fixturedef.execute(request)
            except (KeyboardInterrupt, pytest.exit.Exception) as stopped:
                self._keep(need, request, self._ran[first:], stopped, ("", "", ""))
                raise
            except BaseException as raised:  # a skip, a failure: the tests that need it get it
                error = raised
        self._keep(need, request, self._ran[first:], error, (output[0], output[1], logs[0]))
        for _name, _depth, definition in shared:
            fixture_runs.detach(definition)

    def _keep(
        self,
        need: Need,
        request: Any,
        ran: list[Any],
        error: BaseException | None,
        output: tuple[str, str, str],
    ) -> None:
        """Take the values this setup made off their definitions, in the order made."""
        item = need.item
        names = {definition: name for name, _depth, definition in shared_in(item, self.names)}
        made = [definition for definition in ran if definition in names]
        if need.fixturedef not in made:
            made.append(need.fixturedef)  # never ran: a shared fixture it depends on failed
        known = self.instances
        for definition in made:
            number = self.plan.numbers[value_key(item, definition)]
            if number in known:
                continue
            cached, finalizers = fixture_runs.detach(definition)
            failed = fixture_runs.cached_error(cached)
            if failed is None and cached is None:
                failed = error
            instance = Instance(
                names[definition],
                number,
                definition_of(definition),
                value=cached[0] if cached is not None else None,
                error=failed,
                traceback=failed.__traceback__ if failed is not None else None,
                cached=cached,
                finalizers=finalizers,
                fixturedef=definition,
                request=request if definition is need.fixturedef else None,
            )
            if definition is need.fixturedef:
                instance.output = output
            self.instances[number] = instance

    def _limit_message(self, name: str, what: str) -> Callable[[], str]:
        return lambda: (
            f"pytest-parproc: shared fixture {name!r} took longer than {self.limit} to {what} "
            "(in the main process)"
        )

    def portable(self) -> Any:
        """The values for workers that are not forks of this process (pickled once)."""
        provider = self.provider or Provider(self.names, {}, {}, [])
        return provider.portable()

    # -- hooks (main process only: a forked worker unregisters it, ``worker.attach``) --------
    @pytest.hookimpl(trylast=True)
    def pytest_fixture_post_finalizer(self, fixturedef: Any) -> None:
        if (
            self.config.option.setupshow
            and fixturedef.cached_result is not None
            and is_shared(fixturedef, self.names)
        ):
            self._mark_shown()

    def _mark_shown(self) -> None:
        """``--setup-show`` marks the line it just wrote for a shared fixture."""
        with fixture_runs.terminal_between_captures(self.config):
            writer = self.config.get_terminal_writer()
            writer.write(" (shared)")
            writer.flush()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """What a value's set-up printed goes to the first dependent test's reports (from its
        set-up on: pytest repeats a phase's captured output in the later phases' reports)."""
        if report.when == "teardown":
            self._last_nodeid = report.nodeid
        if report.when == "setup":
            sections = []
            for number in self.plan.table_of(report.nodeid).values():
                instance = self.instances.get(number)
                if instance is not None and any(instance.output):
                    for title, text in zip(_OUTPUTS, instance.output, strict=True):
                        if text:
                            sections.append((f"Captured {title} setup", text))
                    instance.output = ("", "", "")
            if sections:
                self._attached[report.nodeid] = sections
        for title, text in reversed(self._attached.get(report.nodeid, ())):
            _prepend_section(report, title, text)

    # -- teardown -----------------------------------------------------------------------------
    def tear_down(self) -> None:
        """Tear every value down, newest first; errors are reported as a serial run reports a
        session fixture's: on the teardown of the last test that ran."""
        __tracebackhide__ = True
        replayer = self.config.stash.get(REPLAYER_KEY, None)
        errors, output = self._tear_down_all(capture=True)
        if errors:
            self._report(errors, output)
        elif replayer is not None:
            replayer.release()

    def _at_session_teardown(self) -> None:
        """A finalizer of the session in this process: where tests ran here after the parallel
        part (``compat.runs_alone``), pytest's own teardown of the last one runs it, and
        reports its errors on that test, as serially. Otherwise ``tear_down`` ran already."""
        __tracebackhide__ = True
        errors, _ = self._tear_down_all(capture=False)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise BaseExceptionGroup("errors while tearing down shared fixtures", errors)

    def _tear_down_all(self, capture: bool) -> tuple[list[BaseException], list[str]]:
        __tracebackhide__ = True
        errors: list[BaseException] = []
        output = ["", ""]
        if not self.instances:
            return errors, output
        started = time.perf_counter()
        try:
            for instance in reversed(list(self.instances.values())):
                with (
                    fixture_runs.captured_output(self.config)
                    if capture
                    else contextlib.nullcontext(["", ""])
                ) as printed:
                    try:
                        with (
                            main_thread_limit(
                                self.limit_s, self._limit_message(instance.name, "tear down")
                            ),
                            view_of(self.config).span(f"tear down {instance.name}", SHARED_LANE),
                        ):
                            self._finish(instance)
                    except (KeyboardInterrupt, pytest.exit.Exception):
                        raise
                    except BaseException as error:
                        errors.append(error)
                output = [output[0] + printed[0], output[1] + printed[1]]
        finally:
            self.instances.clear()
            self.teardown_s = time.perf_counter() - started
            if self.config.pluginmanager.is_registered(self):
                self.config.pluginmanager.unregister(self)
        return errors, output

    def _finish(self, instance: Instance) -> None:
        __tracebackhide__ = True
        request = instance.request
        if request is None:
            need = self.plan.needs[instance.number]
            request = fixture_runs.subrequest(need.item, instance.fixturedef)
        finalizers, instance.finalizers = instance.finalizers, []
        fixture_runs.finish_detached(instance.fixturedef, request, instance.cached, finalizers)

    def _report(self, errors: list[BaseException], output: list[str]) -> None:
        """As a serial run: in the teardown report of the test that ran last (the replayer kept
        it back), or in a report of its own after it."""
        replayer = self.config.stash.get(REPLAYER_KEY, None)
        held = replayer.held if replayer is not None else None
        if held is not None:
            item = replayer.items[held.index]  # type: ignore[union-attr]
        else:
            assert self._session is not None
            items = self._session.items
            item = next((each for each in items if each.nodeid == self._last_nodeid), items[-1])

        def raise_them() -> None:
            __tracebackhide__ = True
            if len(errors) == 1:
                raise errors[0]
            raise BaseExceptionGroup("errors while tearing down shared fixtures", errors)

        call = pytest.CallInfo.from_call(raise_them, "teardown")
        report = item.ihook.pytest_runtest_makereport(item=item, call=call)
        if held is not None:
            report.sections = [*held.report.sections, *report.sections]
            report.duration += held.report.duration
        for title, text in zip(("stdout", "stderr"), output, strict=True):
            if text:
                report.sections.append((f"Captured {title} teardown", text))
        if held is not None:
            replayer.release(report)  # type: ignore[union-attr]
        else:
            item.ihook.pytest_runtest_logreport(report=report)


class _SetupPhase:
    """Registered while the shared fixtures are set up: which fixtures ran (theirs and their
    dependencies), and ``--setup-show``'s mark on a shared one's line."""

    def __init__(self, run: SharedRun) -> None:
        self.run = run

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Any:
        try:
            return (yield)
        finally:
            run = self.run
            run._ran.append(fixturedef)
            if run.config.option.setupshow and is_shared(fixturedef, run.names):
                run._mark_shown()


def _prepend_section(report: pytest.TestReport, title: str, text: str) -> None:
    for position, (name, content) in enumerate(report.sections):
        if name == title:
            report.sections[position] = (name, text + content)
            return
    report.sections.insert(0, (title, text))
