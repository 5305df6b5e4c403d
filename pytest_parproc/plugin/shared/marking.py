"""``@shared_fixture`` and the opt-in by name: which session fixtures run once per run."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, overload

import pytest

from ..pytest_internals import fixture_runs

F = TypeVar("F", bound=Callable[..., Any])

#: set on a function decorated with ``@shared_fixture`` (``FixtureDef.func`` is that function)
SHARED_ATTRIBUTE = "_parproc_shared"
#: the ini key naming session fixtures the user does not own that run once per run
SHARED_INI = "parproc_shared"
SHARED_OPTION = "--par-shared"
_UNSET = object()


@overload
def shared_fixture(fn: F) -> F: ...


@overload
def shared_fixture(
    fn: None = None,
    *,
    params: Iterable[object] | None = None,
    ids: Sequence[object | None] | Callable[[Any], object | None] | None = None,
    autouse: bool = False,
    name: str | None = None,
) -> Callable[[F], F]: ...


def shared_fixture(
    fn: Any = None,
    *,
    params: Iterable[object] | None = None,
    ids: Sequence[object | None] | Callable[[Any], object | None] | None = None,
    autouse: bool = False,
    name: str | None = None,
    scope: Any = _UNSET,
) -> Any:
    """A session fixture set up once per run, in the main process, and torn down once at its
    end, after every worker has finished (pytest-parproc's parallel runs); in any other run,
    exactly ``@pytest.fixture(scope="session")``.

    Workers get its value: forked ones inherit it, others receive it pickled, threads share
    the one object. Return a descriptor (a URL, a path, a port), not a live connection. It may
    depend on other shared fixtures and on ``request``, ``pytestconfig``, ``tmp_path_factory``,
    ``tmpdir_factory``, ``cache`` and ``testrun_uid``.
    """
    if scope is not _UNSET:
        raise TypeError(
            f"shared_fixture() takes no scope (got scope={scope!r}): a shared fixture is a "
            "session fixture set up once per run"
        )

    def decorate(function: Any) -> Any:
        if not callable(function):
            raise TypeError(f"@shared_fixture decorates a fixture function, not {function!r}")
        setattr(function, SHARED_ATTRIBUTE, True)
        return pytest.fixture(
            function, scope="session", params=params, ids=ids, autouse=autouse, name=name
        )

    return decorate if fn is None else decorate(fn)


def add_options(parser: pytest.Parser) -> None:
    parser.getgroup("parproc").addoption(
        SHARED_OPTION,
        action="append",
        dest="parproc_shared",
        default=[],
        metavar="NAME",
        help="set session fixture NAME up once per run in the main process, as if it were "
        "declared with @shared_fixture (repeatable, or comma-separated; adds to the ini key) "
        f"[ini: {SHARED_INI}]",
    )
    parser.addini(
        SHARED_INI,
        "session fixtures set up once per run in the main process (as @shared_fixture), by "
        "name, separated by spaces",
        type="args",
        default=[],
    )


def configured_names(config: pytest.Config) -> dict[str, str]:
    """Fixture names opted in by the user, each with where it was named."""
    found: dict[str, str] = {}
    for name in config.getini(SHARED_INI) or ():
        found.setdefault(str(name), f"ini key {SHARED_INI}")
    for value in config.getoption("parproc_shared", None) or ():
        for name in str(value).split(","):
            if name.strip():
                found.setdefault(name.strip(), f"option {SHARED_OPTION}")
    return found


def is_shared(fixturedef: Any, names: Iterable[str]) -> bool:
    """Whether a fixture definition runs once per run: declared with ``@shared_fixture``, or a
    session fixture named by the user."""
    if getattr(fixturedef.func, SHARED_ATTRIBUTE, False):
        return True
    return fixturedef.argname in names and fixturedef.scope == "session"


def check_names(session: pytest.Session, names: dict[str, str]) -> None:
    """Every fixture named by the user exists and is session scoped."""
    for name, source in names.items():
        found = fixture_runs.definitions(session, name)
        if not found:
            raise pytest.UsageError(
                f"{source} names fixture {name!r} as shared, but no fixture of that name exists "
                "(in the plugins, conftest files and test modules collected)"
            )
        narrower = [each for each in found if each.scope != "session"]
        if narrower:
            raise pytest.UsageError(
                f"{source} names fixture {name!r} as shared, but it is {narrower[0].scope} "
                "scoped: only a session fixture can be set up once per run"
            )
