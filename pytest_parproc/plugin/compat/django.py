"""pytest-django beside the threading backend (checked against pytest-django 4.14): which of
its fixtures patch process-wide state, and which tests of its database run alone
(``alone_reason``).

Two of pytest-django's autouse fixtures apply to every test, installed Django project or not:
``_template_string_if_invalid_marker`` requests ``monkeypatch`` and
``_fail_for_invalid_template_variable`` uses ``pytest.MonkeyPatch.context()``. Both patch
Django's template settings only while ``--fail-on-template-vars`` is on. Counting them would
send every test of a suite to the serial lane as soon as pytest-django is installed; they are
counted only when that option is on.

(Process workers need nothing of this module: pytest-django names a test database per worker
from ``config.workerinput``, ``compat.xdist``.)
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: Set by pytest-django (in ``pytest_configure``) when ``--fail-on-template-vars`` is on.
INVALID_TEMPLATE_VARS_ENV = "FAIL_INVALID_TEMPLATE_VARS"
TEMPLATE_FIXTURES = frozenset(
    {"_template_string_if_invalid_marker", "_fail_for_invalid_template_variable"}
)


def idle_patchers() -> frozenset[str]:
    """pytest-django's fixtures that would patch process-wide state but, in this run, do not."""
    if os.environ.get(INVALID_TEMPLATE_VARS_ENV, "false") == "true":
        return frozenset()
    return TEMPLATE_FIXTURES


#: pytest-django's fixtures of a transaction test (the database is emptied after it)
TRANSACTIONAL_FIXTURES = frozenset(
    {
        "transactional_db",
        "live_server",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
    }
)


def _uses_database(item: Any) -> tuple[bool, bool]:
    """Whether a test uses pytest-django's test database, and whether as a transaction test."""
    names = set(getattr(item, "fixturenames", ()))
    marker = item.get_closest_marker("django_db")
    transactional = bool(names & TRANSACTIONAL_FIXTURES) or (
        marker is not None
        and any(marker.kwargs.get(key) for key in ("transaction", "reset_sequences"))
    )
    return transactional or marker is not None or "db" in names, transactional


def _sqlite() -> bool:
    """Whether a database of the configured Django project is SQLite."""
    settings = getattr(sys.modules.get("django.conf"), "settings", None)
    if settings is None or not settings.configured:
        return False
    return any("sqlite" in str(db.get("ENGINE", "")) for db in settings.DATABASES.values())


def alone_reason(item: Any) -> str | None:
    """On threads: why a test that uses pytest-django's test database runs in the serial lane.
    Each thread has its own connection: tests in transactions that are rolled back can share
    a PostgreSQL (or MySQL) test database; a transaction test empties it after it, under the
    others, and SQLite lets one connection write at a time (its in-memory test database, one
    table lock)."""
    if "pytest_django" not in sys.modules:
        return None
    uses, transactional = _uses_database(item)
    if transactional:
        return "pytest-django empties the test database after it (a transaction test)"
    if uses and _sqlite():
        return "pytest-django's SQLite test database lets one connection write at a time"
    return None
