"""Which tests the threading backend runs alone (how ini entries match node ids, what source is
searched, and how often), and ``PYTEST_CURRENT_TEST`` across threads."""

from __future__ import annotations

import ast
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_parproc.plugin.threads import serial_lane
from pytest_parproc.plugin.threads.isolation import update_current_test_var
from pytest_parproc.plugin.threads.serial_lane import _PATCHES, _matches
from pytest_parproc.plugin.threads.sources import SourcePattern, Sources

pytest_plugins = ["pytester"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("tests/db/test_x.py::test_y", True),  # the id itself
        ("tests/db/test_x.py::test_y[1]", False),  # another parametrized case
        ("tests/db/test_x.py", True),  # its file
        ("tests/db", True),  # its directory
        ("tests/db/", True),
        ("tests/d", False),  # not a prefix at a boundary
        ("tests/db/test_x.py::test", False),
        ("*::test_y*", True),  # a glob
        ("tests/*/test_x.py::*", True),
    ],
)
def test_ini_entries_match_ids_files_directories_and_globs(pattern: str, expected: bool) -> None:
    assert _matches("tests/db/test_x.py::test_y[0]", pattern) is expected


@pytest.mark.parametrize(
    ("source", "patches"),
    [
        ("@mock.patch('os.getcwd')", True),
        ("@patch('os.getcwd')", True),
        ("with patch.object(module, 'name'):", True),
        ("with unittest.mock.patch.dict(os.environ):", True),
        ("@freeze_time('2020-01-01')", True),
        ("response = client.patch('/items/1')", False),  # an HTTP PATCH, not a patcher
        ("from unittest.mock import patch", False),
        ("dispatch(event)", False),
    ],
)
def test_patchers_are_recognised_in_source(source: str, patches: bool) -> None:
    assert _PATCHES.search(source) is patches


CLASS_OF_MANY = """
import pytest, warnings

class TestMany:
    @pytest.mark.parametrize("n", range(200))
    def test_plain(self, n):
        assert n >= 0

    def test_warns(self):
        with pytest.warns(UserWarning):
            warnings.warn("w")

@pytest.mark.parametrize("extras", [[], ["a"]])
def test_named_like_a_fixture(extras):
    assert len(extras) < 2
"""


class _Probe:
    """Reads the serial lane's reasons where pytest collected (the test modules imported)."""

    items: list[pytest.Item]
    found: dict[int, str]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.items = list(session.items)
        self.found = serial_lane.reasons(session.config, self.items)


def _probe(pytester: pytest.Pytester) -> _Probe:
    pytester.makepyfile(CLASS_OF_MANY)
    probe = _Probe()
    pytester.inline_run("--collect-only", "-p", "no:syrupy", "-p", "no:randomly", plugins=[probe])
    return probe


class _CountingRegex:
    """A compiled pattern that counts its searches."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern, self.searches = pattern, 0

    def search(self, text: str) -> re.Match[str] | None:
        self.searches += 1
        return self.pattern.search(text)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        self.searches += 1
        return self.pattern.finditer(text)


def test_a_class_is_searched_once_not_once_per_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # packaging's suite: classes of thousands of parametrized tests, each once searched again
    # (6.8x the serial time on threads); the cost must not grow with the class's tests
    counted = {}
    for name in ("_WARNING_STATE", "_SUBTEST", "_PATCHES"):
        pattern = getattr(serial_lane, name)
        counted[name] = _CountingRegex(pattern.regex)
        monkeypatch.setattr(serial_lane, name, SourcePattern(counted[name], pattern.needles))  # type: ignore[arg-type]
    found = _probe(pytester).found
    # the class's source holds pytest.warns: all its tests run alone, found with one search
    assert len(found) == 201
    assert set(found.values()) == {serial_lane._WARNINGS_REASON}
    # (once per file that holds one of the pattern's words: the module, a plugin's fixture's;
    # where once per test was over 200)
    assert all(pattern.searches <= 3 for pattern in counted.values()), {
        name: pattern.searches for name, pattern in counted.items()
    }


def test_a_parameter_named_like_a_fixture_is_a_value(pytester: pytest.Pytester) -> None:
    probe = _probe(pytester)
    items, found = probe.items, probe.found
    named = [i for i, item in enumerate(items) if "test_named_like_a_fixture" in item.nodeid]
    assert len(named) == 2 and not set(named) & set(found)


def test_pytest_current_test_names_a_running_test_whatever_the_threads_do() -> None:
    # no lock: ends racing starts must never leave a running test without the variable, nor
    # raise (os.environ.pop is two steps)
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    class Item:
        def __init__(self, nodeid: str) -> None:
            self.nodeid = nodeid

    def run(number: int) -> None:
        item = Item(f"t.py::test_{number}")
        try:
            start.wait()
            for _ in range(2000):
                update_current_test_var(item, "call")
                assert os.environ["PYTEST_CURRENT_TEST"].startswith("t.py::test_")
                update_current_test_var(item, None)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert "PYTEST_CURRENT_TEST" not in os.environ  # every test ended
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved


@pytest.mark.parametrize(
    ("source", "swaps"),
    [
        ("runner = CliRunner()", True),  # click's, typer's
        ("result = CliRunner(mix_stderr=False).invoke(cli)", True),
        ("with contextlib.redirect_stdout(buffer):", True),
        ("with redirect_stderr(io.StringIO()):", True),
        ("sys.stdout = io.StringIO()", True),
        ("sys.argv = ['prog', '--help']", True),
        ("saved = sys.argv", False),
        ("assert sys.stdout == original", False),
        ("print(x, file=sys.stdout)", False),
    ],
)
def test_stream_swaps_are_recognised_in_source(source: str, swaps: bool) -> None:
    assert serial_lane._STREAMS.search(source) is swaps


SOURCES = """
import functools

def deco(f):
    return f

@deco
@functools.lru_cache
def decorated(x):
    return x  # in decorated


class Outer:
    @deco
    class Inner:
        def method(self):
            return "in method"

    def after(self):
        pass


def factory():
    class Local:
        pass
    return Local

LAMBDA = lambda: "in lambda"  # noqa: E731
"""


def test_sources_are_sliced_from_one_parse_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mod_sources.py").write_text(SOURCES)
    monkeypatch.syspath_prepend(tmp_path)
    import mod_sources  # type: ignore[import-not-found]

    sources = Sources()
    parses = []
    real_parse = ast.parse
    monkeypatch.setattr(ast, "parse", lambda *a, **k: parses.append(1) or real_parse(*a, **k))
    decorated = sources.of(mod_sources.decorated.__wrapped__.__code__)
    assert decorated.startswith("@deco\n@functools.lru_cache\ndef decorated")
    assert decorated.rstrip().endswith("# in decorated")
    inner = sources.of(mod_sources.Outer.Inner)
    assert inner.startswith("    @deco\n    class Inner") and "in method" in inner
    assert "def after" not in inner
    assert sources.of(mod_sources.Outer).startswith("class Outer:") and "def after" in sources.of(
        mod_sources.Outer
    )
    assert sources.of(mod_sources.factory()).strip() == "class Local:\n        pass"
    assert "in lambda" in sources.of(mod_sources.LAMBDA.__code__)  # (inspect's, as before)
    assert len(parses) == 1
    assert Sources().of(int) == ""


PLAIN = """
import pytest

class TestPlain:
    @pytest.mark.parametrize("n", range(3))
    def test_value(self, n):
        assert n >= 0

def helper():
    return 1

def test_helper():
    assert helper() == 1
"""

PATCHING = """
from unittest import mock

def test_plain():
    assert True

@mock.patch("os.getcwd")
def test_patched(getcwd):
    assert getcwd

def test_after():
    assert True
"""


def test_a_file_without_a_pattern_s_words_is_not_parsed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # parsing every test module cost jinja2's 2 s suite a tenth of its time on threads; a file
    # that names none of the patterns' words and none of its classes twice needs no parse
    pytester.makepyfile(test_plain=PLAIN, test_patching=PATCHING)
    parsed: list[str] = []
    real_parse = ast.parse

    def parse(source: str, *args: object, **kwargs: object) -> object:
        parsed.append(str(args[0]) if args else "")
        return real_parse(source, *args, **kwargs)  # type: ignore[call-overload]

    probe = _Probe()
    items: list[pytest.Item] = []

    class Collected:
        def pytest_collection_finish(self, session: pytest.Session) -> None:
            items.extend(session.items)
            monkeypatch.setattr(ast, "parse", parse)
            probe.found = {
                items[index].nodeid: reason
                for index, reason in serial_lane.reasons(session.config, items).items()
            }

    pytester.inline_run("--collect-only", "-p", "no:randomly", plugins=[Collected()])
    # only the patching test runs alone: the match is placed in its function, not its file's
    assert probe.found == {"test_patching.py::test_patched": serial_lane._PATCHES_REASON}
    # test_patching.py is parsed, for the match's place; test_plain.py is not
    assert [Path(name).name for name in parsed if "test_p" in name] == ["test_patching.py"]


@pytest.mark.parametrize(
    ("source", "may"),
    [
        ("class TestA:\n    def test(self):\n        pass\n", False),
        ("def test():\n    global FLAG\n", True),
        (
            "class TestA:\n    x = 1\n\nclass TestB:\n    def test(self):\n        TestA.x = 2\n",
            True,
        ),
        ("class TestA:\n    pass\n\nclass TestB(TestA):\n    pass\n", True),  # (a parse says no)
        ("import other\n\ndef test():\n    other.Thing.x = 1\n", False),
        # what a regular expression reads differently from the parser
        ("\x0cclass TestA:\n    x = 1\n\ndef test():\n    TestA.x = 2\n", True),
        ("class \\\n    TestA:\n    x = 1\n\ndef test():\n    TestA.x = 2\n", True),
        ("class \uff34estA:\n    x = 1\n\ndef test():\n    TestA.x = 2\n", True),
    ],
)
def test_what_may_hand_state_is_told_from_the_text(source: str, may: bool) -> None:
    from pytest_parproc.plugin.threads.module_state import may_hand_state, order_dependence

    assert may_hand_state(source) is may
    if order_dependence(ast.parse(source)) is not None:  # the text test is never narrower
        assert may


HANDOFF = """
import other

class TestA:
    context = 1
    def setUp(self):
        self.value = TestA.context  # reading is fine
    @classmethod
    def setUpClass(cls):
        TestA.context = 2  # once, before the class's tests
    def test_local(self):
        value = 3
        other.Thing.flag = True  # another module's class: a patch, judged elsewhere
        self.attr = value
"""


@pytest.mark.parametrize(
    ("addition", "expected"),
    [
        ("", None),
        (
            "class TestB:\n    def test_b(self):\n        TestA.context = 4\n",
            "`TestA.context = ...` in TestB.test_b",
        ),
        (
            "def test_c():\n    TestA.context += 1\n",
            "`TestA.context = ...` in test_c",
        ),
        (
            "def test_d():\n    (TestA.context, x), y = (1, 2), 3\n",
            "`TestA.context = ...` in test_d",
        ),
        (
            "SWITCH = False\ndef helper():\n    global SWITCH\n    SWITCH = True\n",
            "`global SWITCH` in helper",
        ),
        ("def setup_module():\n    global SWITCH\n    SWITCH = 1\n", None),
        (
            "@pytest.fixture(scope='module')\ndef db():\n    global DB\n    DB = 1\n",
            None,
        ),
        (
            "@pytest.fixture\ndef per_test():\n    global DB\n    DB = 1\n",
            "`global DB` in per_test",
        ),
    ],
)
def test_modules_whose_tests_hand_state_to_each_other(addition: str, expected: str | None) -> None:
    from pytest_parproc.plugin.threads.module_state import order_dependence

    assert order_dependence(ast.parse(HANDOFF + addition)) == expected


def test_a_run_all_in_the_serial_lane_says_threads_brought_nothing() -> None:
    alone = {"a": "requests monkeypatch (x)", "b": "requests monkeypatch (x)", "c": "marked y"}
    (last,) = [line for line in serial_lane.summary(alone, 3, False) if "no concurrency" in line]
    assert "(the most common reason, for 2 of 3: requests monkeypatch (x))" in last
    assert last.endswith("--par-backend=loky")
    same = serial_lane.summary({"a": "marked y", "b": "marked y"}, 2, False)
    assert "(the most common reason, for all 2: marked y)" in same[-1]
    # one test concurrent: threads did run something
    assert not any("no concurrency" in line for line in serial_lane.summary(alone, 4, False))


def test_the_line_in_a_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "def test_a(monkeypatch):\n    monkeypatch.setenv('X', '1')\n"
        "def test_b(monkeypatch):\n    monkeypatch.setenv('X', '2')\n"
    )
    run = pytester.runpytest("--n-jobs=2", "--par-backend=threading", "-p", "no:randomly")
    run.assert_outcomes(passed=2)
    run.stdout.fnmatch_lines(
        ["parproc: the threading backend brought no concurrency: every test ran alone (the most "
         "common reason, for all 2: requests monkeypatch*--par-backend=loky"]
    )  # fmt: skip


def test_a_run_all_in_the_serial_lane_replaces_nothing_of_pytest(pytester: pytest.Pytester) -> None:
    """No thread runs a test: pytest's own set-up state, fixture execution and
    PYTEST_CURRENT_TEST run the tests (the serial lane costs what pytest's own loop does)."""
    pytester.makepyfile(
        """
        import os
        import _pytest.fixtures, _pytest.runner
        ORIGINAL = (
            _pytest.runner.SetupState,
            _pytest.fixtures.FixtureDef.execute,
            _pytest.runner._update_current_test_var,
        )

        def test_a(request, monkeypatch):
            assert type(request.session._setupstate) is ORIGINAL[0]
            assert _pytest.fixtures.FixtureDef.execute is ORIGINAL[1]
            assert _pytest.runner._update_current_test_var is ORIGINAL[2]
            assert os.environ["PYTEST_CURRENT_TEST"].endswith("::test_a (call)")

        def test_b(monkeypatch):
            test_a.__globals__["ORIGINAL"]  # (a second test: a plan of more than one)
        """
    )
    run = pytester.runpytest("--n-jobs=2", "--par-backend=threading", "-p", "no:randomly")
    run.assert_outcomes(passed=2)
    assert "brought no concurrency" in run.stdout.str()


@pytest.mark.slow  # waits on purpose: a time limit
def test_a_lane_only_protocol_cut_short_leaves_nothing_set_up(pytester: pytest.Pytester) -> None:
    """--par-timeout fires in a hook, outside the test's phases: the test's protocol is cut
    short, and what it had set up is torn down before the next test (which pytest would
    otherwise refuse: "previous item was not torn down properly")."""
    pytester.makeconftest(
        "import time\n"
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'setup' and report.nodeid.endswith('test_a'):\n"
        "        time.sleep(3)\n"
    )
    pytester.makepyfile(
        "class TestX:\n"
        "    def test_a(self, monkeypatch):\n        pass\n"
        "    def test_b(self, monkeypatch):\n        pass\n"
        "def test_c(monkeypatch):\n    pass\n"
    )
    run = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--n-jobs=2", "--par-backend=threading", "--par-timeout=1"
    )
    run.assert_outcomes(passed=2)
    assert "brought no concurrency" in run.stdout.str()
    assert "not torn down properly" not in run.stdout.str()


def test_modules_that_hand_state_on_are_advised_to_stay_whole() -> None:
    handed = "in a module whose tests hand state to each other (`global {}` in f): in their order"
    alone = {
        "a": handed.format("G"),
        "b": handed.format("G"),
        "c": handed.format("H"),  # another module: the same kind of reason
        "d": "requests monkeypatch (x)",
        "e": "requests monkeypatch (x)",
    }
    line = serial_lane.summary(alone, 5, False)[-1]
    assert f"(the most common reason, for 3 of 5: {handed.format('G')})" in line
    assert line.endswith("--par-backend=loky --par-dist=loadfile")
