import os
import threading
import warnings
from unittest import mock

import pytest


def test_monkeypatch(monkeypatch):
    monkeypatch.setenv("PARPROC_ALONE", "1")
    assert os.environ["PARPROC_ALONE"] == "1"


def test_capfd(capfd):
    os.write(1, b"to the file descriptor\n")
    assert capfd.readouterr().out == "to the file descriptor\n"


def test_recwarn(recwarn):
    warnings.warn("recorded")
    assert len(recwarn) == 1


def test_pytest_warns():
    with pytest.warns(UserWarning, match="expected"):
        warnings.warn("expected")


@pytest.mark.parproc_serial
def test_marked():
    # alone: no other test, and the threads that ran the others are gone
    assert [thread.name for thread in threading.enumerate()] == ["MainThread"]


@pytest.mark.thread_unsafe
def test_marked_thread_unsafe():
    pass


def test_mock_patch():
    with mock.patch("os.getcwd", return_value="/patched"):
        assert os.getcwd() == "/patched"


def test_listed_in_the_ini_file():
    pass


def test_concurrent_after_all():
    assert "PARPROC_ALONE" not in os.environ
