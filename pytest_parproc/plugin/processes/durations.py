"""Each test's duration, kept in pytest's cache from one run to the next for planning."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

CACHE_KEY = "parproc/durations"


def load(config: pytest.Config) -> dict[str, float]:
    """The recorded durations by node id; empty without a cache (``-p no:cacheprovider``) or
    when what is stored is not a mapping of node ids to seconds (skipped, not an error: the
    next run writes it anew)."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return {}
    stored = cache.get(CACHE_KEY, None)
    if not isinstance(stored, dict):
        return {}
    return {
        str(nodeid): float(seconds)
        for nodeid, seconds in stored.items()
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0
    }


def save(config: pytest.Config, measured: Mapping[str, float]) -> None:
    """Record this run's durations (setup, call and teardown of each test), keeping the
    entries of tests that did not run this time."""
    cache = getattr(config, "cache", None)
    if cache is None or not measured:
        return
    durations = load(config)
    durations.update((nodeid, round(seconds, 6)) for nodeid, seconds in measured.items())
    cache.set(CACHE_KEY, durations)
