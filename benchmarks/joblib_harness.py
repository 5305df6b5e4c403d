"""A pytest plugin for ``joblib_suite.py``'s run against the engine (``-p joblib_harness``).

joblib's tests undo what they register in joblib's own tables (``BACKENDS``,
``parallel.DEFAULT_BACKEND``). With the public imports rewritten, ``register_parallel_backend``
writes to the engine's registry instead, which those tests do not know how to undo; left as is,
one test's registration (``test_overwrite_default_backend`` makes joblib's ThreadingBackend the
default) would fail every later test. This plugin puts the engine's registry back after each
test, which is what the tests' own clean-up does for joblib.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_parproc.parallel.backends import registry


@pytest.fixture(autouse=True)
def _engine_registry_restored() -> Iterator[None]:
    registered, default = dict(registry._registered), registry._default_name
    yield
    with registry._lock:
        registry._registered.clear()
        registry._registered.update(registered)
        registry._default_name = default
