"""pytest-django beside the threading backend (checked against pytest-django 4.14).

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
