"""A module-wide switch (a parser's packrat cache, a library's debug mode) that one test turns
on for its length and others assert off. Serially, it is off again before they run."""

import threading

SETTINGS = {"packrat": False}
_switched_on = threading.Event()
_looked = threading.Event()


def test_with_packrat_turned_on() -> None:
    SETTINGS["packrat"] = True
    try:
        _switched_on.set()
        _looked.wait(timeout=0.5)  # alone: nobody looks, the wait runs out
        assert SETTINGS["packrat"]
    finally:
        SETTINGS["packrat"] = False


def test_packrat_is_off_by_default() -> None:
    _switched_on.wait(timeout=0.5)  # serially the test above has ended already
    try:
        assert SETTINGS["packrat"] is False
    finally:
        _looked.set()


def test_fails_alone_too() -> None:
    # a real failure: reported once, as failed, wherever it ran (the keys never change)
    assert sorted(SETTINGS) == ["cache"]
