"""The threading backend's warnings: each test thread filters and records its own, and
``catch_warnings`` on one thread leaves the others alone."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from pytest_parproc.plugin.threads.warning_filters import WarningsRouter, warnings_of_test

ALWAYS = [("always", None, Warning, None, 0)]
DEFAULT = [("default", None, Warning, None, 0)]


def on_thread(function: Callable[[], Any]) -> Any:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(_outcome(function)))
    thread.start()
    thread.join()
    kind, value = box[0]
    if kind == "error":
        raise value
    return value


def _outcome(function: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "value", function()
    except BaseException as error:
        return "error", error


def test_each_thread_records_its_own_warnings_once_per_location() -> None:
    router = WarningsRouter(ALWAYS)

    def test(name: str) -> list[str]:
        with warnings_of_test(DEFAULT) as caught:
            for _ in range(3):
                warnings.warn(f"from {name}", stacklevel=1)
        return [str(message.message) for message in caught]

    with router.installed():
        assert on_thread(lambda: test("a")) == ["from a"]
        assert on_thread(lambda: test("b")) == ["from b"]
    assert router.unowned == []


def test_error_filters_raise_on_their_own_thread_only() -> None:
    router = WarningsRouter(ALWAYS)
    errors = [("error", None, UserWarning, None, 0)]

    def strict() -> None:
        with warnings_of_test(errors):
            warnings.warn("strict", stacklevel=1)

    def lenient() -> int:
        with warnings_of_test(ALWAYS) as caught:
            warnings.warn("lenient", stacklevel=1)
        return len(caught)

    with router.installed():
        with pytest.raises(UserWarning, match="strict"):
            on_thread(strict)
        assert on_thread(lenient) == 1


def test_catch_warnings_on_a_test_thread_stays_on_that_thread() -> None:
    router = WarningsRouter(ALWAYS)
    inside, outside = threading.Event(), threading.Event()

    def silenced() -> list[str]:
        with warnings_of_test(ALWAYS) as caught:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                inside.set()
                assert outside.wait(30)
                warnings.warn("silenced", stacklevel=1)
            with warnings.catch_warnings(record=True) as recorded:
                warnings.warn("recorded in the block", stacklevel=1)
            warnings.warn("after the blocks", stacklevel=1)
        assert [str(m.message) for m in recorded] == ["recorded in the block"]
        return [str(message.message) for message in caught]

    def beside() -> list[str]:
        with warnings_of_test(ALWAYS) as caught:
            assert inside.wait(30)
            warnings.warn("beside", stacklevel=1)  # while the other thread's block says "ignore"
            outside.set()
        return [str(message.message) for message in caught]

    with router.installed():
        results: dict[str, list[str]] = {}
        threads = [
            threading.Thread(target=lambda: results.__setitem__("silenced", silenced())),
            threading.Thread(target=lambda: results.__setitem__("beside", beside())),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert warnings.filters == ALWAYS  # type: ignore[attr-defined]
    assert results == {"silenced": ["after the blocks"], "beside": ["beside"]}


def test_warnings_off_test_threads_are_unowned_and_state_is_restored() -> None:
    before = list(warnings.filters)  # type: ignore[attr-defined]
    router = WarningsRouter(ALWAYS)
    with router.installed():
        on_thread(lambda: warnings.warn("from a thread that runs no test", stacklevel=1))
    assert [str(message.message) for message in router.unowned] == [
        "from a thread that runs no test"
    ]
    assert warnings.filters == before  # type: ignore[attr-defined]
    assert warnings.catch_warnings.__enter__.__name__ == "__enter__"
    assert warnings.simplefilter.__module__ == "warnings"
