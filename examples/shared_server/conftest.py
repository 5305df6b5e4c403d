"""One HTTP server for the whole run, however many workers: a shared fixture starts it in the
main process, and each worker's session fixture builds its own client for it."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest

from pytest_parproc import shared_fixture


@shared_fixture
def server_url(tmp_path_factory: pytest.TempPathFactory):
    """A real server process on 127.0.0.1, serving a folder: set up once per run, torn down
    once at its end. It returns a descriptor (the URL), which every worker can use."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "greeting.txt").write_text("hello from the one server")
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # (its request log)
        text=True,
    )
    try:
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 43621 (...) ..."
        port = int(line.split(" port ")[1].split()[0])
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def fetch(server_url: str):
    """Once per worker: a client of the shared server (a live object, not shared)."""
    opener = urllib.request.build_opener()

    def get(path: str) -> str:
        with opener.open(f"{server_url}/{path}", timeout=10) as response:
            return response.read().decode()

    return get
