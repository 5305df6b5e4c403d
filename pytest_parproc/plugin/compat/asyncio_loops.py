"""pytest-asyncio: each test in an event loop of its own, on threads as serially (checked
against pytest-asyncio 1.5).

In worker processes the plugin works unchanged. On threads, two of its habits meet concurrent
tests:

- while it sets an async fixture up for a test it swaps the fixture definition's function
  (``FixtureDef.func``, shared by every test) for one bound to that test's event loop: the
  threading runner keeps that attribute per thread (``threads.fixtures``), so each test's
  fixtures run in its own loop;
- a test whose loop is wider than the test (``@pytest.mark.asyncio(loop_scope="module")``, or
  the ``asyncio_default_test_loop_scope`` ini option) shares that loop with its neighbours,
  and a loop runs on one thread at a time: such a test runs in the serial lane
  (``alone_reason``). Async fixtures with wider loops are set up once, under the fixture's
  lock, and need nothing more.
"""

from __future__ import annotations

import sys

import pytest


def alone_reason(item: pytest.Item) -> str | None:
    """Why a test cannot run on a test thread because of pytest-asyncio."""
    if "pytest_asyncio" not in sys.modules:  # (its marker is not looked for on every test)
        return None
    # pytest-asyncio's own test items tell their loop's scope (marker, then ini option).
    scope = getattr(item, "_loop_scope", None) if item.get_closest_marker("asyncio") else None
    if scope is None or scope == "function":
        return None
    return (
        f"pytest-asyncio runs it in the event loop of its {scope}, which runs on one thread "
        "at a time"
    )
