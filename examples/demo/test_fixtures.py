"""Module and class fixtures stay set up while a worker runs their tests."""

import time

import pytest


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "data.txt"
    path.write_text("42")
    yield path
    path.unlink()


class TestQueries:
    def test_read(self, database):
        assert database.read_text() == "42"

    def test_slow_query(self, database):
        time.sleep(0.3)
        assert database.exists()


def test_worker_id(parproc_worker_id):
    # "w0", "w1", ... under --n-jobs, "main" in a plain run
    assert parproc_worker_id.startswith("w") or parproc_worker_id == "main"
