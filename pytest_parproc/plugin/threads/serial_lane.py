"""Which tests cannot share the process with a concurrent test, and why: those run alone, in
the main thread, after the concurrent ones (the threading backend's serial lane). And which
tests may run at the same time at all: those with the same parameters of wider fixtures."""

from __future__ import annotations

import fnmatch
import inspect
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from .. import compat, pytest_internals
from ..compat import django
from ..names import SERIAL_INI, SERIAL_MARK, THREAD_UNSAFE_MARK
from ..pytest_internals import threads as thread_internals
from .sources import SourcePattern, Sources

#: Fixtures that change state of the whole process, which no other test may see meanwhile.
SERIAL_FIXTURES = {
    "capfd": "requests capfd (captures the process's file descriptors)",
    "capfdbinary": "requests capfdbinary (captures the process's file descriptors)",
    "monkeypatch": "requests monkeypatch (patches process-wide state)",
    "recwarn": "requests recwarn (records warnings process-wide on this Python)",
    "caplog": "requests caplog (sets logger levels for the whole process)",
    "subtests": "requests subtests (captures output by swapping sys.stdout)",
    "mocker": "requests mocker (patches process-wide state)",
    "class_mocker": "requests class_mocker (patches process-wide state)",
    "module_mocker": "requests module_mocker (patches process-wide state)",
    "package_mocker": "requests package_mocker (patches process-wide state)",
    "session_mocker": "requests session_mocker (patches process-wide state)",
    "extras": "requests extras (pytest-html keeps a test's extras in one place for the process)",
    "extra": "requests extra (pytest-html keeps a test's extras in one place for the process)",
    "freezer": "requests freezer (freezes the clock process-wide)",
}

#: Source that changes the process's warning filters: pytest.warns, warnings.catch_warnings...
_WARNING_STATE = SourcePattern(
    re.compile(
        r"\bwarns\s*\(|\bdeprecated_call\s*\(|\bcatch_warnings\s*\("
        r"|\bwarnings\s*\.\s*(simplefilter|filterwarnings|resetwarnings)\s*\("
    ),
    ("warns", "deprecated_call", "warnings"),
)
_WARNINGS_REASON = (
    "uses pytest.warns or warnings.catch_warnings (warning filters are process-wide on this Python)"
)
_SUBTEST = SourcePattern(re.compile(r"\.subTest\s*\("), ("subTest",))
#: unittest.mock's patchers and freezegun change module attributes for the whole process
_PATCHES = SourcePattern(
    re.compile(
        r"(?<![\w.])patch(\.\w+)?\s*\(|\bmock\.patch\b|\bfreeze_time\s*\("
        r"|\bMonkeyPatch\s*(\.\s*context)?\s*\("
    ),
    ("patch", "freeze_time", "MonkeyPatch"),
)
_PATCHES_REASON = (
    "uses unittest.mock.patch, pytest.MonkeyPatch or freezegun (patches process-wide state)"
)
#: the start of the reason ``_order_dependence`` gives (the rest names the module's function)
_HANDED = "in a module whose tests hand state to each other"
_SUBTEST_REASON = "uses unittest's subTest (pytest reports each subtest from the test's thread)"
#: what swaps the process's standard streams or arguments for a while: click's (and typer's)
#: CliRunner swaps sys.stdin, sys.stdout and sys.stderr; two at once on threads can restore
#: each other's, and leave the process with a closed stream for every later test
_STREAMS = SourcePattern(
    re.compile(
        r"\bCliRunner\b|\bredirect_std(out|err)\s*\("
        r"|\bsys\s*\.\s*(stdout|stderr|stdin|argv)\s*=(?!=)"
    ),
    ("CliRunner", "redirect_std", "stdout", "stderr", "stdin", "argv"),
)
_STREAMS_REASON = (
    "swaps sys.stdout, sys.stdin or sys.argv (click's CliRunner, contextlib.redirect_stdout, an "
    "assignment: process-wide)"
)


def context_aware_warnings() -> bool:
    """Whether this interpreter keeps warning filters per thread (Python 3.14's option)."""
    return bool(getattr(sys.flags, "context_aware_warnings", False))


def reasons(config: pytest.Config, items: Sequence[pytest.Item]) -> dict[int, str]:
    """Index in ``items`` -> why that test runs alone; tests missing from it run concurrently."""
    patterns = [str(line).strip() for line in config.getini(SERIAL_INI) if str(line).strip()]
    scan_warnings = not context_aware_warnings()
    found: dict[int, str] = {}
    for index, item in enumerate(items):
        reason = compat.alone_reason(config, item) or _reason(item, patterns, scan_warnings)
        if reason is not None:
            found[index] = reason
    for cache in (_sources, _found, _by_code, _patching, _by_parent):
        cache.clear()  # read once per run
    return found


#: per parent node (a class, a module): the names of the markers on it and above it, and why
#: its module's tests depend on their order (most tests share their parent with many others)
_by_parent: dict[Any, tuple[frozenset[str], str | None]] = {}


def _of_parent(item: pytest.Item) -> tuple[frozenset[str], str | None]:
    parent = item.parent
    known = _by_parent.get(parent)
    if known is None:
        marks = (
            frozenset(m.name for m in parent.iter_markers()) if parent is not None else frozenset()
        )
        known = _by_parent[parent] = (marks, _order_dependence(item))
    return known


def _reason(item: pytest.Item, patterns: list[str], scan_warnings: bool) -> str | None:
    parent_marks, handed = _of_parent(item)
    own = {mark.name for mark in item.own_markers}
    if SERIAL_MARK in own or SERIAL_MARK in parent_marks:
        return f"marked {SERIAL_MARK}"
    if THREAD_UNSAFE_MARK in own or THREAD_UNSAFE_MARK in parent_marks:
        return f"marked {THREAD_UNSAFE_MARK} (pytest-run-parallel's marker)"
    for pattern in patterns:
        if _matches(item.nodeid, pattern):
            return f"listed in the {SERIAL_INI} ini option ({pattern})"
    if isinstance(item, pytest.DoctestItem):
        return "a doctest (doctest swaps sys.stdout for its own)"
    if handed is not None:
        return f"{_HANDED} ({handed}): in their order"
    serial = [name for name in getattr(item, "fixturenames", ()) if name in SERIAL_FIXTURES]
    if serial:
        values = thread_internals.direct_parameters(item)  # parameters named like fixtures
        for name in serial:
            if name not in values and (name != "monkeypatch" or _patches(item)):
                return SERIAL_FIXTURES[name]
    return _code_reason(item, scan_warnings)


#: the tests of one function share a fixture graph (one mapping for all its parameters): what
#: their code says is read once, keyed by function, class, module and that mapping's identity
#: (the mapping is kept in the value, so that its identity is not reused)
_by_code: dict[tuple[Any, ...], tuple[str | None, Any]] = {}
_patching: dict[int, tuple[bool, Any]] = {}


def _code_reason(item: pytest.Item, scan_warnings: bool) -> str | None:
    graph = pytest_internals.fixture_graph(item)
    # (the parent, a class or module, stands for both: one attribute, not a walk up the tree)
    key = (getattr(item, "function", None), item.parent, id(graph))
    known = _by_code.get(key)
    if known is not None:
        return known[0]
    code = list(_code_of(item))
    reason = None
    if scan_warnings and any(_source_matches(function, _WARNING_STATE) for function in code):
        reason = _WARNINGS_REASON
    elif any(_source_matches(function, _SUBTEST) for function in code):
        reason = _SUBTEST_REASON
    elif any(_source_matches(function, _PATCHES) for function in code):
        reason = _PATCHES_REASON
    elif any(_source_matches(function, _STREAMS) for function in code):
        reason = _STREAMS_REASON
    _by_code[key] = (reason, graph)
    return reason


def _order_dependence(item: pytest.Item) -> str | None:
    filename = getattr(getattr(item, "module", None), "__file__", None)
    return _sources.order_dependence(filename) if filename else None


def _patches(item: pytest.Item) -> bool:
    """Whether a test that has ``monkeypatch`` among its fixtures may patch with it: the test
    asks for it, or a fixture that asks for it may use it (not pytest-django's template
    fixtures, which patch nothing unless asked to: ``compat.django``)."""
    graph = pytest_internals.fixture_graph(item)
    known = _patching.get(id(graph))
    if known is None:
        unused = django.idle_patchers()
        by_fixture = any(
            name != "monkeypatch"
            and name not in unused
            and definitions
            and "monkeypatch" in getattr(definitions[-1], "argnames", ())
            for name, definitions in graph.items()
        )
        known = _patching[id(graph)] = (by_fixture, graph)
    return known[0] or "monkeypatch" in _requested_by_test(item)


def _requested_by_test(item: pytest.Item) -> set[str]:
    """The fixtures a test names itself: its parameters and its ``usefixtures`` marks."""
    names: set[str] = set()
    function = getattr(item, "function", None)
    if function is not None:
        try:
            names.update(inspect.signature(function).parameters)
        except (TypeError, ValueError):
            return {"monkeypatch"}  # cannot tell: count it
    for mark in item.iter_markers("usefixtures"):
        names.update(str(arg) for arg in mark.args)
    return names


def _matches(nodeid: str, pattern: str) -> bool:
    if nodeid == pattern or fnmatch.fnmatchcase(nodeid, pattern):
        return True
    stem = pattern.rstrip("/")
    return any(nodeid.startswith(stem + separator) for separator in ("::", "/", "["))


def _code_of(item: pytest.Item) -> Iterable[Any]:
    """The test function, its whole class (decorators and set-up methods included), its
    module's set-up and teardown functions, and its fixtures."""
    function = getattr(item, "function", None)
    if function is not None:
        yield function
    cls = getattr(item, "cls", None)
    if cls is not None:
        yield cls
    module = getattr(item, "module", None)
    for name in ("setup_module", "setUpModule", "teardown_module", "tearDownModule"):
        found = getattr(module, name, None) if module is not None else None
        if found is not None:
            yield found
    idle = django.idle_patchers()
    for name, definitions in pytest_internals.fixture_graph(item).items():
        if name in idle or name == "monkeypatch":  # (judged by who requests it: ``_patches``)
            continue
        for definition in definitions:
            yield getattr(definition, "func", None)


#: (code object or class, pattern) -> whether its source matches: a class's source is read and
#: searched once per run, not once for each of its tests (a class of 2,000 parametrized tests)
_found: dict[tuple[Any, SourcePattern], bool] = {}
_sources = Sources()


def _source_matches(code: Any, pattern: SourcePattern) -> bool:
    """Whether the source of a function or class matches (each searched once)."""
    if code is None:
        return False
    if not isinstance(code, type):
        code = getattr(inspect.unwrap(code), "__code__", None)
        if code is None:
            return False
    key = (code, pattern)
    found = _found.get(key)
    if found is None:
        found = _found[key] = _sources.matches(code, pattern)
    return found


@dataclass
class Segment:
    """Consecutive tests that agree on the parameters of every fixture wider than a function
    (a session fixture parametrized over two backends, say): they run at the same time, then
    those of them that must run alone. A serial run has one instance of such a fixture at a
    time, and pytest orders tests so that those sharing one are next to each other."""

    parameters: dict[str, tuple[int, int]] = field(default_factory=dict)
    concurrent: list[int] = field(default_factory=list)
    alone: list[int] = field(default_factory=list)


def segments(items: Sequence[pytest.Item], alone: dict[int, str]) -> list[Segment]:
    found: list[Segment] = [Segment()]
    for index, item in enumerate(items):
        wide = _wide_parameters(item)
        current = found[-1]
        if any(current.parameters.get(name, value) != value for name, value in wide.items()):
            current = Segment()
            found.append(current)
        current.parameters.update(wide)
        (current.alone if index in alone else current.concurrent).append(index)
    return [segment for segment in found if segment.concurrent or segment.alone]


def _wide_parameters(item: pytest.Item) -> dict[str, tuple[int, int]]:
    """The parameter of each fixture wider than a function the test gets a parameter of."""
    indices = pytest_internals.parameters(item)
    if not indices:
        return {}
    graph = pytest_internals.fixture_graph(item)
    wide = {}
    for name, index in indices.items():
        definitions = graph.get(name, ())
        if definitions and getattr(definitions[-1], "scope", "function") != "function":
            wide[name] = index
    return wide


def summary(alone: dict[str, str], total: int, verbose: bool) -> list[str]:
    """The summary's lines on the serial lane: ``alone`` maps node ids to why they ran alone;
    the ids are listed when ``verbose``."""
    by_reason: dict[str, list[str]] = {}
    for nodeid, reason in alone.items():
        by_reason.setdefault(reason, []).append(nodeid)
    lines = [
        f"parproc: {len(alone)} of {total} tests ran alone, with no other test running (the "
        f"serial lane){':' if alone else '.'}"
    ]
    for reason, nodeids in by_reason.items():
        lines.append(f"  {len(nodeids)} {reason}")
        lines.extend(f"    {nodeid}" for nodeid in (nodeids if verbose else ()))
    if alone and len(alone) == total:
        lines.append(_no_concurrency(by_reason, total))
    return lines


def _no_concurrency(by_reason: dict[str, list[str]], total: int) -> str:
    """The line for a run whose every test ran alone: the most common kind of reason (the
    module rule's reasons differ only by the function they name), and the process backend's
    settings that keep what those tests need."""
    kinds: dict[str, list[str]] = {}
    for reason, nodeids in by_reason.items():
        kinds.setdefault(reason.split(" (", 1)[0], []).extend(nodeids)
    kind, nodeids = max(kinds.items(), key=lambda entry: len(entry[1]))
    reason = max(
        (r for r in by_reason if r.split(" (", 1)[0] == kind), key=lambda r: len(by_reason[r])
    )
    share = f"all {total}" if len(nodeids) == total else f"{len(nodeids)} of {total}"
    if kind == _HANDED:  # a module must stay whole, in its order, in one process
        advice = (
            "each module whole on one worker, in its order: --par-backend=loky --par-dist=loadfile"
        )
    else:
        advice = "each worker a process of its own: --par-backend=loky"
    return (
        "parproc: the threading backend brought no concurrency: every test ran alone (the "
        f"most common reason, for {share}: {reason}); a process backend runs such tests side "
        f"by side, {advice}"
    )
