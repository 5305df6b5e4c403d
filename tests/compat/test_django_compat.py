"""pytest-django beside the plugin: a test database per worker process, named as pytest-xdist
names it (``<name>_gw0``, ``<name>_gw1``, ...), created and destroyed by each worker; tests
pass as serially. SQLite files, and a real PostgreSQL server on 127.0.0.1 (``conftest.py``).
The names come from pytest-django's own xdist support, which reads ``config.workerinput``
(``compat/xdist.py``)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from conftest import PostgresServer

pytest.importorskip("pytest_django")

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow  # whole runs in pytest subprocesses

FILES = {
    "shop/__init__.py": "",
    "shop/models.py": """
        from django.db import models

        class Item(models.Model):
            name = models.CharField(max_length=20, unique=True)

            class Meta:
                app_label = "shop"
    """,
    "test_shop.py": """
        import json, os, pathlib
        import pytest
        from django.db import connection
        from shop.models import Item

        @pytest.mark.django_db
        @pytest.mark.parametrize("n", range(8))
        def test_items(n):
            Item.objects.create(name="same name")  # unique: a shared table would clash
            assert Item.objects.count() == 1
            pathlib.Path(os.environ["SEEN"], f"{n}.json").write_text(json.dumps(
                [os.environ.get("PYTEST_XDIST_WORKER"), connection.settings_dict["NAME"]]
            ))
    """,
}


SQLITE = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": "shop.sqlite3",
    "TEST": {"NAME": "test_shop.sqlite3"},
}

SETTINGS = """
SECRET_KEY = "test"
INSTALLED_APPS = ["django.contrib.contenttypes", "shop"]
DATABASES = {{"default": {database!r}}}
USE_TZ = True
"""


def run(
    pytester: pytest.Pytester, database: dict[str, Any], *args: str
) -> dict[str, list[str | None]]:
    (pytester.path / "settings.py").write_text(SETTINGS.format(database=database))
    for name, text in FILES.items():
        path = pytester.path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(text))
    pytester.makeini("[pytest]\nDJANGO_SETTINGS_MODULE = settings\n")
    seen = pytester.path / "seen"
    seen.mkdir(exist_ok=True)
    for old in seen.iterdir():
        old.unlink()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEEN", str(seen))
        patch.delenv("PYTEST_XDIST_WORKER", raising=False)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=180)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    return {path.stem: json.loads(path.read_text()) for path in seen.iterdir()}


def check_per_worker(parallel: dict[str, list[str | None]], test_name: str) -> None:
    assert len(parallel) == 8
    for worker, name in parallel.values():
        assert worker is not None and worker.startswith("gw")
        assert name == f"{test_name}_{worker}"  # pytest-django's suffix, as under xdist
    assert len({worker for worker, _ in parallel.values()}) == 2


@pytest.mark.parametrize("start", ["fork", "collect"])
def test_each_worker_has_its_own_sqlite_database(pytester: pytest.Pytester, start: str) -> None:
    serial = run(pytester, SQLITE)
    assert {name for _, name in serial.values()} == {"test_shop.sqlite3"}
    parallel = run(pytester, SQLITE, "--n-jobs=2", "--par-dist=load", f"--par-start={start}")
    check_per_worker(parallel, "test_shop.sqlite3")
    leftover = sorted(path.name for path in pytester.path.glob("test_shop.sqlite3*"))
    assert leftover == [], "each worker destroys its database when its session ends"


@pytest.mark.parametrize("start", ["fork", "collect"])
def test_each_worker_has_its_own_postgresql_database(
    pytester: pytest.Pytester, postgres_server: PostgresServer, start: str
) -> None:
    pytest.importorskip("psycopg")
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "USER": postgres_server.user,
        "HOST": postgres_server.host,
        "PORT": str(postgres_server.port),
    }
    before = postgres_server.databases()
    serial = run(pytester, database)
    assert {name for _, name in serial.values()} == {"test_shop"}
    parallel = run(pytester, database, "--n-jobs=2", "--par-dist=load", f"--par-start={start}")
    check_per_worker(parallel, "test_shop")
    assert postgres_server.databases() == before, "each worker drops its database at the end"


THREAD_SUITE = """
import pytest

def test_plain():
    pass

def test_patching(monkeypatch):
    monkeypatch.setenv("X", "1")
"""


@pytest.mark.parametrize("fail_on_template_vars", [False, True])
def test_installed_pytest_django_keeps_threaded_tests_concurrent(
    pytester: pytest.Pytester, fail_on_template_vars: bool
) -> None:
    # pytest-django's autouse template fixtures request monkeypatch for every test; they patch
    # only with --fail-on-template-vars, so only then do they send every test to the serial lane.
    pytester.makepyfile(test_threads=THREAD_SUITE)
    extra = ("--fail-on-template-vars",) if fail_on_template_vars else ()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FAIL_INVALID_TEMPLATE_VARS", raising=False)
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--n-jobs=2", "--par-backend=threading", "-v", *extra
        )
    assert result.ret == 0, result.stdout.str()
    alone = 2 if fail_on_template_vars else 1
    result.stdout.fnmatch_lines([f"parproc: {alone} of 2 tests ran alone*"])


TRANSACTION_TESTS = """
import pytest
from shop.models import Item

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("n", range(4))
def test_transaction(n):
    Item.objects.create(name=f"t{n}")
    assert Item.objects.count() == 1  # the database is emptied after each of them
"""


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_on_threads_database_tests_pass_as_serially(
    pytester: pytest.Pytester, request: pytest.FixtureRequest, engine: str
) -> None:
    """Each thread has its own connection to the one test database: tests in transactions that
    are rolled back share a PostgreSQL database concurrently; transaction tests, and every
    database test on SQLite, run in the serial lane."""
    if engine == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        database: dict[str, Any] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "shop",
            "USER": server.user,
            "HOST": server.host,
            "PORT": str(server.port),
        }
    else:
        database = SQLITE
    pytester.makepyfile(test_transactions=TRANSACTION_TESTS)
    serial = run(pytester, database)
    threaded = run(pytester, database, "--n-jobs=2", "--par-backend=threading")
    assert threaded == serial  # one database, no worker id: as serially
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEEN", str(pytester.path / "seen"))
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--n-jobs=2", "--par-backend=threading", "-v", timeout=180
        )
    assert result.ret == 0, result.stdout.str()
    transactions = "*4 pytest-django empties the test database after it (a transaction test)"
    if engine == "sqlite":
        sqlite = "*8 pytest-django's SQLite test database lets one connection write*"
        lines = ["parproc: 12 of 12 tests ran alone*", sqlite, transactions]
    else:
        lines = ["parproc: 4 of 12 tests ran alone*", transactions]
    result.stdout.fnmatch_lines(lines, consecutive=False)
