"""Test modules whose tests hand state to each other: a function of the module assigns an
attribute of a class the module defines (``Test02.context = saved``, in another test class), or
declares a module global (``global SWITCH``). Serially, the module's tests see those changes in
their order; on threads, in any order. Such a module's tests run in the serial lane, in their
order (a parser's test module that turns a cache on in one test class and asserts it off in
an earlier one).

Set-up and teardown of a class or module (``setUpClass``, ``setup_module``, ...) and fixtures
wider than a function (``@pytest.fixture(scope="module")``) are left out: they run once,
before or after all of the tests they serve, on threads as serially."""

from __future__ import annotations

import ast
import re
import unicodedata
from collections.abc import Iterator

#: functions that run once around all of a class's or module's tests
_ONCE = frozenset(
    {
        "setUpClass",
        "tearDownClass",
        "setup_class",
        "teardown_class",
        "setUpModule",
        "tearDownModule",
        "setup_module",
        "teardown_module",
    }
)


#: a class statement (at the top of a module, where the rule's classes are, or deeper: more
#: than needed is only a parse more), a line continuation or a form feed included
_CLASS = re.compile(r"^[ \t\f]*class[\s\\]+(\w+)", re.MULTILINE)


def may_hand_state(text: str) -> bool:
    """Whether the module's source may meet the rule, as its text tells without parsing it:
    it says ``global``, or names a class it defines more than once."""
    if not text.isascii():  # names as the parser reads them (NFKC: a fullwidth T is a T)
        text = unicodedata.normalize("NFKC", text)
    if re.search(r"\bglobal\b", text):
        return True
    names = set(_CLASS.findall(text))
    if not names:
        return False
    named = re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b")
    return len(named.findall(text)) > len(names)


def order_dependence(tree: ast.Module) -> str | None:
    """Why the tests of the module parsed as ``tree`` depend on their order, or None."""
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    for qualname, function in _functions(tree, ""):
        if function.name in _ONCE or _wider_fixture(function):
            continue
        for node in _statements_within(function):
            if isinstance(node, ast.Global):
                return f"`global {', '.join(node.names)}` in {qualname}"
            for target in _targets(node):
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in classes
                ):
                    return f"`{target.value.id}.{target.attr} = ...` in {qualname}"
    return None


def statements(node: ast.AST) -> Iterator[ast.stmt]:
    """The statements directly in ``node``'s blocks (a body, an ``else``, the handlers' and
    cases' bodies): definitions are statements, and expressions (most of a tree) need not be
    walked to find them."""
    for name in ("body", "orelse", "finalbody", "handlers", "cases"):
        for child in getattr(node, name, ()):
            if isinstance(child, ast.stmt):
                yield child
            else:  # an except handler, a match case: their own bodies
                yield from statements(child)


def _statements_within(node: ast.AST) -> Iterator[ast.stmt]:
    """Every statement in ``node``'s blocks, however deep (not its expressions: assignments
    and ``global`` are statements)."""
    for child in statements(node):
        yield child
        yield from _statements_within(child)


def _functions(
    node: ast.AST, prefix: str
) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """The functions defined at the module's top level or in its classes (nested ones are
    walked with the function that defines them)."""
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
    for child in statements(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((prefix + child.name, child))
        elif isinstance(child, ast.ClassDef):
            found += _functions(child, f"{prefix}{child.name}.")
    return found


def _wider_fixture(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """``@pytest.fixture(scope="module")`` and the like: set up once for the tests it serves."""
    for decorator in function.decorator_list:
        if not isinstance(decorator, ast.Call):
            continue
        name = decorator.func
        called = name.attr if isinstance(name, ast.Attribute) else getattr(name, "id", "")
        if called != "fixture":
            continue
        for keyword in decorator.keywords:
            scope = keyword.value
            if (
                keyword.arg == "scope"
                and isinstance(scope, ast.Constant)
                and scope.value in {"class", "module", "package", "session"}
            ):
                return True
    return False


def _targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        found = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        found = [node.target]
    else:
        return []
    while any(isinstance(target, (ast.Tuple, ast.List)) for target in found):
        found = [
            element
            for target in found
            for element in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target])
        ]
    return found
