"""The source of test functions, classes and fixtures, for the serial lane's search: each file is
read and parsed once, and each function's or class's lines are sliced out of it.

``inspect.getsource`` costs too much for this: it tokenizes a function's lines again for every
function, and on Python < 3.13 parses the whole module again for every class (a module of fifty
test classes is parsed fifty times). A suite's planning time would grow with its size squared.
"""

from __future__ import annotations

import ast
import inspect
import linecache
from dataclasses import dataclass, field
from typing import Any

from .module_state import order_dependence, statements


@dataclass
class _File:
    lines: list[str]
    #: first line of a function (its first decorator, as ``co_firstlineno``) -> its last line
    functions: dict[int, int] = field(default_factory=dict)
    #: a class's ``__qualname__`` -> its first line (its first decorator) and its last line
    classes: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: why the file's tests depend on their order (``module_state``), or None
    order_dependence: str | None = None


class Sources:
    """Sources read in one run (the files' ASTs are not kept, only line numbers)."""

    def __init__(self) -> None:
        self._files: dict[str, _File | None] = {}

    def clear(self) -> None:
        self._files.clear()

    def of(self, code: Any) -> str:
        """The source of a code object or a class ("" when it cannot be read)."""
        if isinstance(code, type):
            return self._class(code)
        found = self._file(code.co_filename)
        end = found.functions.get(code.co_firstlineno) if found is not None else None
        if found is None or end is None:
            return _getsource(code)  # a lambda, a function made by exec
        return "".join(found.lines[code.co_firstlineno - 1 : end])

    def _class(self, cls: type) -> str:
        try:
            filename = inspect.getsourcefile(cls)
        except TypeError:  # a builtin class
            return ""
        found = self._file(filename) if filename else None
        span = found.classes.get(cls.__qualname__) if found is not None else None
        if found is None or span is None:
            return _getsource(cls)
        return "".join(found.lines[span[0] - 1 : span[1]])

    def order_dependence(self, filename: str) -> str | None:
        """Why the tests of a module hand state to each other (``module_state``), or None."""
        found = self._file(filename)
        return found.order_dependence if found is not None else None

    def _file(self, filename: str) -> _File | None:
        if filename not in self._files:
            self._files[filename] = _read(filename)
        return self._files[filename]


def _read(filename: str) -> _File | None:
    lines = linecache.getlines(filename)
    if not lines:
        return None
    try:
        tree = ast.parse("".join(lines), filename)
    except (SyntaxError, ValueError):
        return None
    found = _File(lines, order_dependence=order_dependence(tree))
    _index(tree, found, "")
    return found


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
