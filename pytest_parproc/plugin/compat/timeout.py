"""pytest-timeout: its per-test limits on every backend (checked against pytest-timeout 2.4).

In worker processes the plugin works as serially: its ``signal`` method interrupts the test in
the worker's main thread; its ``thread`` method ends the worker with ``os._exit``, which the
main process reports as that test's crash (a serial run ends there altogether).

On threads its timers cannot work: ``signal`` needs the main thread (the plugin falls back to
``thread`` elsewhere), and ``thread`` would end the whole run with ``os._exit``. A test on a
test thread therefore gets the plugin's limit for it (the marker, ``--timeout``,
``PYTEST_TIMEOUT``, the ini option) as its own per-test limit, the one ``--par-timeout`` sets
(``item_limit``), and the plugin's timer is not started there (its
``pytest_timeout_set_timer`` hook, which exists for such alternatives). A limit for the test
function alone (``func_only``), which only the plugin's timer can keep, runs the test in the
serial lane, in the main thread, where the plugin's own timer works (``alone_reason``).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

MODULE = "pytest_timeout"


def _settings(item: pytest.Item) -> Any | None:
    """The plugin's settings for ``item`` (its own reading of marker, option, variable and
    ini), or None without the plugin."""
    module = sys.modules.get(MODULE)
    if module is None or not item.config.pluginmanager.has_plugin("timeout"):
        return None
    return module._get_item_settings(item)  # the plugin's own resolution of all four sources


def active(config: pytest.Config) -> bool:
    return MODULE in sys.modules and config.pluginmanager.has_plugin("timeout")


def item_limit(item: pytest.Item) -> tuple[float, str] | None:
    """The plugin's limit for a test in seconds, with how to say it, or None (no limit)."""
    settings = _settings(item)
    if settings is None or not settings.timeout or settings.timeout <= 0:
        return None
    where = "its timeout marker" if item.get_closest_marker("timeout") else "--timeout"
    return float(settings.timeout), f"pytest-timeout's {settings.timeout:g} s, from {where}"


def alone_reason(item: pytest.Item) -> str | None:
    """Why a test cannot run on a test thread because of pytest-timeout."""
    settings = _settings(item)
    if settings is None or not settings.timeout or settings.timeout <= 0:
        return None
    if settings.func_only:
        return "pytest-timeout times its call alone (func_only), which only its own timer can do"
    return None
