"""The values of shared fixtures as every process of a run sees them, and the plugin that
hands them to pytest (``pytest_fixture_setup``) in place of running the fixture again."""

from __future__ import annotations

import copy
import inspect
import os
import traceback
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import cloudpickle
import pytest

from ...workerinfo import process_worker_id
from .. import pytest_internals
from ..pytest_internals import fixture_runs
from .marking import is_shared
from .plan import Table

#: where the frames that a traceback shown to the user leaves out come from
_HIDDEN = tuple(
    os.sep + os.path.join(*parts) + os.sep
    for parts in (("_pytest",), ("pluggy",), ("pytest_parproc", "plugin"))
)

#: what the provider returns for a value of None (``pytest_fixture_setup`` is firstresult)
SERVED = object()

#: the plugin name of ``Provider`` in every process of a run
PROVIDER_NAME = "parproc-shared"


@dataclass
class Instance:
    """One value of a shared fixture (one per parameter): what its setup returned or raised.

    In a worker that is not a fork of the main process, ``pickled`` stands for both until the
    first test that needs it unpickles it."""

    name: str
    number: int
    #: which definition: (base node id, name, function's qualified name), in every process
    definition: tuple[str, str, str] = ("", "", "")
    value: Any = None
    error: BaseException | None = None
    traceback: TracebackType | None = None
    #: cloudpickle's bytes of ("value", value) or ("error", exception), or None
    pickled: bytes | None = None
    #: why the value cannot be pickled ("" when it can)
    unpicklable: str = ""
    #: what set-up printed and logged (stdout, stderr, log records), for the first dependent
    #: test's report (main process only)
    output: tuple[str, str, str] = ("", "", "")
    #: the main process's own: pytest's cached result, finalizers and request
    cached: Any = None
    finalizers: list[Any] = field(default_factory=list)
    fixturedef: Any = None
    request: Any = None

    def portable(self) -> tuple[str, int, tuple[str, str, str], bytes | None, str]:
        """What a worker that is not a fork gets: pickled once, in the main process."""
        if self.error is not None:
            # (without its traceback, which does not pickle: its text goes in a note)
            error = _copy(self.error)
            note = f"shared fixture {self.name!r} failed in the main process:\n{self._where()}"
            if not isinstance(error, (pytest.skip.Exception, pytest.xfail.Exception)):
                # (a skip's reason is what the user wrote, not a failure)
                error.__dict__["__notes__"] = [*getattr(self.error, "__notes__", ()), note]
            try:
                outcome = _OUTCOMES.get(type(error))
                if outcome is not None:  # (named "builtins.Skipped": pickled by name, it fails)
                    data = cloudpickle.dumps(("outcome", (outcome, dict(vars(error)))))
                else:
                    data = cloudpickle.dumps(("error", error))
            except Exception:
                text = f"{type(self.error).__name__}: {self.error}\n{note}"
                data = cloudpickle.dumps(("error", RuntimeError(text)))
            return (self.name, self.number, self.definition, data, "")
        try:
            data = cloudpickle.dumps(("value", self.value))
            return (self.name, self.number, self.definition, data, "")
        except Exception as error:
            why = f"{type(error).__name__}: {error}"
            return (self.name, self.number, self.definition, None, why)

    def _where(self) -> str:
        """The failed setup's traceback, in the user's code only (not pytest's, pluggy's or
        this plugin's frames, as pytest shows it)."""
        frames = [
            frame
            for frame in traceback.extract_tb(self.traceback)
            if not any(part in frame.filename for part in _HIDDEN)
        ]
        return "".join(traceback.format_list(frames)).rstrip()

    @classmethod
    def from_portable(
        cls, entry: tuple[str, int, tuple[str, str, str], bytes | None, str]
    ) -> Instance:
        name, number, definition, data, unpicklable = entry
        return cls(name, number, definition, pickled=data, unpicklable=unpicklable)

    def serve(self, fixturedef: Any, request: Any) -> Any:
        """Give the request this value, as pytest's ``pytest_fixture_setup`` does with the one
        it computes: cached on the definition, or the setup's error raised again."""
        __tracebackhide__ = True
        if self.pickled is not None:
            data, self.pickled = self.pickled, None
            try:
                kind, payload = cloudpickle.loads(data)
            except Exception as error:
                self.error = RuntimeError(
                    f"shared fixture {self.name!r}: its value, pickled in the main process, "
                    f"cannot be unpickled in worker {process_worker_id()}: "
                    f"{type(error).__name__}: {error}"
                )
            else:
                if kind == "outcome":
                    self.error = _outcome(*payload)
                elif kind == "error":
                    self.error = payload
                else:
                    self.value = payload
        if self.unpicklable and self.error is None:
            self.error = failure(
                f"shared fixture {self.name!r} returned a value that cannot be pickled "
                f"({self.unpicklable}), and worker {process_worker_id()} is not a fork of the "
                "main process (it started later, after a crash or a recycling, or with "
                "--par-start=collect, or on dask), so it needs it pickled: return a "
                "descriptor (a URL, a path, a port) rather than a live object"
            )
        if self.error is not None:
            # A copy for each test (threads raise it at the same time; each raise grows the
            # exception's traceback), with the main process's traceback.
            copied = _copy(self.error)
            try:
                raise copied.with_traceback(self.traceback)
            except BaseException as raised:  # cached as raised here, where pytest hides it
                fixture_runs.cache_error(fixturedef, request, raised, raised.__traceback__)
                raise
        fixturedef.cached_result = (self.value, fixturedef.cache_key(request), None)
        return self.value


class Provider:
    """Registered in the main process once the shared fixtures are set up, and in every
    worker: a test that needs a shared fixture gets the main process's value."""

    def __init__(
        self,
        names: frozenset[str],
        instances: dict[int, Instance],
        by_test: dict[str, int],
        tables: list[Table],
    ) -> None:
        self.names = names
        self.instances = instances
        #: which value each test gets (by node id: the same in every process)
        self.by_test = by_test
        self.tables = tables
        #: the definitions of every fixture the main process ran while setting up the shared
        #: ones (their own dependencies too): a forked worker forgets their cached values
        self.ran_in_main: list[Any] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Any:
        if not is_shared(fixturedef, self.names):
            return None
        __tracebackhide__ = True
        item = fixture_runs.requesting_item(request)
        instance = None
        if item is not None:
            key = (fixturedef.argname, _depth(item, fixturedef))
            table = self.by_test.get(item.nodeid)
            number = self.tables[table].get(key) if table is not None else None
            # A test that reaches it only dynamically gets the value other tests requested, if
            # there is one (a fixture without parameters).
            if number is None:
                instance = self._only_value(key, definition_of(fixturedef))
            else:
                instance = self.instances.get(number)
        if instance is None:
            missing = failure(
                f"shared fixture {fixturedef.argname!r} was not set up in the main process: "
                f"{getattr(item, 'nodeid', '') or 'the test'} reaches it only through "
                "request.getfixturevalue, which the main process cannot see before the run, "
                "and no test of the run requests it (with these parameters) as an argument. "
                "Request it as an argument, or with @pytest.mark.usefixtures"
                f"({fixturedef.argname!r}), in the tests that need it"
            )
            # Not cached on the definition, as a failed setup would be: the next test may
            # request it as an argument and get its value.
            fixture_runs.detach(fixturedef)
            raise missing
        value = instance.serve(fixturedef, request)
        # (a None would let pytest's own pytest_fixture_setup run the fixture again: pytest
        # takes the value from ``cached_result``, whatever this returns)
        return SERVED if value is None else value

    def _only_value(
        self, key: tuple[str, int], definition: tuple[str, str, str]
    ) -> Instance | None:
        numbers = {table[key] for table in self.tables if key in table}
        found = [self.instances.get(number) for number in numbers]
        found = [each for each in found if each is not None and each.definition == definition]
        return found[0] if len(found) == 1 else None

    def portable(self) -> tuple[list[Any], dict[str, int], list[Table]]:
        """What workers that are not forks of the main process get, pickled once."""
        entries = [instance.portable() for instance in self.instances.values()]
        return (entries, self.by_test, self.tables)

    @classmethod
    def from_portable(
        cls, names: frozenset[str], data: tuple[list[Any], dict[str, int], list[Table]]
    ) -> Provider:
        entries, by_test, tables = data
        instances = {}
        for entry in entries:
            instance = Instance.from_portable(entry)
            instances[instance.number] = instance
        return cls(names, instances, by_test, tables)


def definition_of(fixturedef: Any) -> tuple[str, str, str]:
    """A fixture definition, the same in every process that collected the same tests."""
    function = inspect.unwrap(fixturedef.func)
    return (str(fixturedef.baseid), fixturedef.argname, getattr(function, "__qualname__", ""))


def _depth(item: pytest.Item, fixturedef: Any) -> int:
    """-1 for the closest definition of a fixture's name the test sees, -2 for the one that
    overrides, ... (as ``plan.shared_in``)."""
    definitions = list(pytest_internals.fixture_graph(item).get(fixturedef.argname, ()))
    for position, each in enumerate(definitions):
        if each is fixturedef:
            return position - len(definitions)
    return -1


#: pytest's outcome exceptions, which pretend to live in ``builtins`` (for their repr): pickled
#: by value they cannot be rebuilt, so they travel as a name and their attributes
_OUTCOMES: dict[type, str] = {
    pytest.skip.Exception: "skip",
    pytest.fail.Exception: "fail",
    pytest.xfail.Exception: "xfail",
    pytest.exit.Exception: "exit",
}


def _outcome(name: str, attributes: dict[str, Any]) -> BaseException:
    kind: Any = next(kind for kind, each in _OUTCOMES.items() if each == name)
    error: BaseException = kind.__new__(kind)
    error.args = (attributes.get("msg"),)
    error.__dict__.update(attributes)
    return error


def failure(message: str) -> BaseException:
    """``pytest.fail``'s exception (reported without a traceback of ours), to raise later."""
    try:
        pytest.fail(message, pytrace=False)
    except pytest.fail.Exception as error:
        return error
    raise AssertionError("pytest.fail returned")  # pragma: no cover


def _copy(error: BaseException) -> BaseException:
    try:
        copied = copy.copy(error)
    except Exception:
        return error
    if type(copied) is not type(error):
        return error
    copied.__cause__, copied.__context__ = error.__cause__, error.__context__
    copied.__suppress_context__ = error.__suppress_context__
    return copied
