"""The source of test functions, classes and fixtures, for the serial lane's search: each file is
read once and searched once for each pattern; a file with a match, or that may hand state from
test to test (``module_state``), is parsed once, and the matches are placed in its functions
and classes by line numbers. Most files have no match, and are never parsed.

``inspect.getsource`` costs too much for this: it tokenizes a function's lines again for every
function, and on Python < 3.13 parses the whole module again for every class (a module of fifty
test classes is parsed fifty times). A suite's planning time would grow with its size squared.
"""

from __future__ import annotations

import ast
import bisect
import inspect
import linecache
import re
from dataclasses import dataclass, field
from typing import Any

from .module_state import may_hand_state, order_dependence, statements


@dataclass(frozen=True)
class SourcePattern:
    """A regular expression searched for in tests' code, with literal strings of which every
    match holds one: a file that holds none (most files) is not searched, nor parsed."""

    regex: re.Pattern[str]
    needles: tuple[str, ...]

    def search(self, text: str) -> bool:
        return any(needle in text for needle in self.needles) and bool(self.regex.search(text))


@dataclass
class _File:
    name: str
    lines: list[str]
    text: str
    #: pattern -> the first and last line of each of its matches in the file
    matches: dict[SourcePattern, list[tuple[int, int]]] = field(default_factory=dict)
    #: parsed (once, where something asked for what only the parse tells)
    parsed: bool = False
    #: first line of a function (its first decorator, as ``co_firstlineno``) -> its last line
    functions: dict[int, int] = field(default_factory=dict)
    #: a class's ``__qualname__`` -> its first line (its first decorator) and its last line
    classes: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: why the file's tests depend on their order (``module_state``), or None; and whether
    #: that is known yet
    order_dependence: str | None = None
    order_known: bool = False


class Sources:
    """Sources read in one run (the files' ASTs are not kept, only line numbers)."""

    def __init__(self) -> None:
        self._files: dict[str, _File | None] = {}

    def clear(self) -> None:
        self._files.clear()

    def of(self, code: Any) -> str:
        """The source of a code object or a class ("" when it cannot be read)."""
        found, span = self._span(code)
        if found is None or span is None:
            return _getsource(code)  # a lambda, a function made by exec, a builtin class
        return "".join(found.lines[span[0] - 1 : span[1]])

    def matches(self, code: Any, pattern: SourcePattern) -> bool:
        """Whether the source of a code object or a class matches ``pattern``: the file is
        searched once, and parsed only if something in it matches."""
        filename = _filename(code)
        found = self._file(filename) if filename else None
        if found is None:
            return pattern.search(self.of(code))
        if pattern not in found.matches:
            found.matches[pattern] = _match_lines(found, pattern)
        lines = found.matches[pattern]
        if not lines:
            return False
        span = _span_in(found, code)
        if span is None:
            return pattern.search(self.of(code))
        return any(span[0] <= first and last <= span[1] for first, last in lines)

    def order_dependence(self, filename: str) -> str | None:
        """Why the tests of a module hand state to each other (``module_state``), or None."""
        found = self._file(filename)
        if found is None:
            return None
        if not found.order_known:
            found.order_known = True
            if may_hand_state(found.text):
                _parse(found)
        return found.order_dependence

    def _span(self, code: Any) -> tuple[_File | None, tuple[int, int] | None]:
        """The file of a code object or class, and its first and last line there."""
        filename = _filename(code)
        found = self._file(filename) if filename else None
        return found, _span_in(found, code) if found is not None else None

    def _file(self, filename: str) -> _File | None:
        if filename not in self._files:
            lines = linecache.getlines(filename)
            self._files[filename] = _File(filename, lines, "".join(lines)) if lines else None
        return self._files[filename]


def _filename(code: Any) -> str | None:
    if not isinstance(code, type):
        return str(code.co_filename)
    try:
        return inspect.getsourcefile(code)
    except TypeError:  # a builtin class
        return None


def _span_in(found: _File, code: Any) -> tuple[int, int] | None:
    """The first and last line of a code object or class in its file (parsed now if not yet)."""
    _parse(found)
    if isinstance(code, type):
        return found.classes.get(code.__qualname__)
    end = found.functions.get(code.co_firstlineno)
    return (code.co_firstlineno, end) if end is not None else None


def _parse(found: _File) -> None:
    """Index the file's functions and classes (once); its order dependence with them."""
    if found.parsed:
        return
    found.parsed = True
    try:
        tree = ast.parse(found.text, found.name)
    except (SyntaxError, ValueError):
        return
    found.order_dependence, found.order_known = order_dependence(tree), True
    _index(tree, found, "")


def _match_lines(found: _File, pattern: SourcePattern) -> list[tuple[int, int]]:
    if not any(needle in found.text for needle in pattern.needles):
        return []
    starts: list[int] = []
    offset = 0
    for line in found.lines:
        starts.append(offset)
        offset += len(line)
    return [
        (
            bisect.bisect_right(starts, m.start()),
            bisect.bisect_right(starts, max(m.end() - 1, m.start())),
        )
        for m in pattern.regex.finditer(found.text)
    ]


def _index(node: ast.AST, found: _File, prefix: str) -> None:
    for child in statements(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
            last = child.end_lineno or child.lineno
            if isinstance(child, ast.ClassDef):
                found.classes.setdefault(prefix + child.name, (first, last))
                _index(child, found, f"{prefix}{child.name}.")
            else:
                found.functions.setdefault(first, last)
                found.functions.setdefault(child.lineno, last)
                _index(child, found, f"{prefix}{child.name}.<locals>.")
        else:
            _index(child, found, prefix)


def _getsource(code: Any) -> str:
    try:
        return inspect.getsource(code)
    except (OSError, TypeError):
        return ""
