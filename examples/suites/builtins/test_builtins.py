import logging
import os
import sys
import warnings

import pytest

CREATED = []


@pytest.mark.parametrize("n", range(4))
def test_tmp_path_is_fresh(tmp_path, n):
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file.txt").write_text(str(n))
    CREATED.append(tmp_path)
    assert len(set(CREATED)) == len(CREATED)


def test_tmp_path_factory(tmp_path_factory):
    first = tmp_path_factory.mktemp("data")
    second = tmp_path_factory.mktemp("data")
    assert first != second and first.parent == second.parent


def test_capsys(capsys):
    print("to stdout")
    print("to stderr", file=sys.stderr)
    captured = capsys.readouterr()
    assert captured.out == "to stdout\n" and captured.err == "to stderr\n"


def test_capfd(capfd):
    os.write(1, b"fd one\n")
    os.write(2, b"fd two\n")
    captured = capfd.readouterr()
    assert captured.out == "fd one\n" and captured.err == "fd two\n"


def test_caplog(caplog):
    caplog.set_level(logging.INFO)
    logging.getLogger("example").info("hello %s", "log")
    assert caplog.messages == ["hello log"]


def test_monkeypatch(monkeypatch):
    monkeypatch.setenv("PARPROC_EXAMPLE", "1")
    monkeypatch.setattr(os, "sep", "|")
    assert os.environ["PARPROC_EXAMPLE"] == "1" and os.sep == "|"


def test_monkeypatch_was_undone():
    assert "PARPROC_EXAMPLE" not in os.environ and os.sep == "/"


def test_recwarn(recwarn):
    warnings.warn("recorded", UserWarning)
    assert len(recwarn) == 1 and str(recwarn.pop().message) == "recorded"


def test_warning_reaches_the_summary():
    warnings.warn("shown in the warnings summary", DeprecationWarning)


def test_custom_warning_class():
    class LocalWarning(UserWarning):
        pass

    warnings.warn(LocalWarning("a warning class defined in a test"))


def test_record_property(record_property):
    record_property("answer", 42)
    record_property("worker_pid_is_int", isinstance(os.getpid(), int))


def test_user_properties(request):
    request.node.user_properties.append(("custom", "value"))


def test_output_is_captured_on_failure():
    print("printed before failing")
    logging.getLogger("example").warning("logged before failing")
    assert False


def test_record_property_with_an_unpicklable_value(record_property):
    import threading

    record_property("lock", threading.Lock())
