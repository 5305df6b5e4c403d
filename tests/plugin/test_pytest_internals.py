"""The private pytest names the plugin relies on (all used in plugin/pytest_internals.py).
If a pytest release changes one, this fails loudly rather than runs going subtly wrong."""

from __future__ import annotations

import inspect
import io
import threading
import warnings
from pathlib import Path
from typing import Any

import _pytest.config
import pytest

from pytest_parproc.plugin import pytest_internals
from pytest_parproc.plugin.pytest_internals import threads as thread_internals

pytest_plugins = ["pytester"]


def collect_items(pytester: pytest.Pytester, source: str) -> list[pytest.Item]:
    """``pytester.getitems`` without syrupy, whose session-finish hook fails on the session
    that in-process collection leaves (it has no ``exitstatus``): a pytester matter, not ours."""
    module = pytester.getmodulecol(source, configargs=("-p", "no:syrupy"))
    return pytester.genitems([module])


def test_prepareconfig_exists_with_args_and_plugins() -> None:
    parameters = list(inspect.signature(_pytest.config._prepareconfig).parameters)
    assert parameters[:2] == ["args", "plugins"]


def test_config_configure_and_unconfigure_methods_exist() -> None:
    assert callable(pytest.Config._do_configure)
    assert callable(pytest.Config._ensure_unconfigure)


def test_tmp_path_factory_is_on_the_config(pytestconfig: pytest.Config) -> None:
    assert isinstance(pytestconfig._tmp_path_factory, pytest.TempPathFactory)  # type: ignore[attr-defined]
    assert pytest_internals.main_basetemp(pytestconfig).is_dir()


def test_a_config_built_like_pytest_main(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider --tb=native\n")
    config = pytest_internals.prepare_config(["-q"], [])
    try:
        assert config.option.tbstyle == "native"  # addopts from the ini file applied
        pytest_internals.configure(config)
        assert config.pluginmanager.get_plugin("terminalreporter") is not None
    finally:
        pytest_internals.unconfigure(config)


def test_parametrization_key_comes_from_callspec_indices(pytester: pytest.Pytester) -> None:
    items = collect_items(
        pytester,
        """
        import pytest

        @pytest.mark.parametrize("b", ["x", "y"])
        @pytest.mark.parametrize("a", [object(), object()])
        def test_p(a, b):
            pass

        def test_plain():
            pass
        """,
    )
    keys = [pytest_internals.parametrization_key(item) for item in items]
    assert keys[-1] is None  # test_plain
    assert all(key is not None for key in keys[:-1])
    assert {key[0].split("::")[-1] for key in keys[:-1] if key} == {"test_p"}
    # The indices differ between pytest versions (per list in pytest 8, per combination in
    # pytest 9.2), but in one version they are the same in every process and tell the cases
    # apart without their ids.
    assert len({key for key in keys[:-1]}) == 4
    assert all(name in ("a", "b") for key in keys[:-1] if key for name, _ in key[1])


# -- the threading backend's (pytest_internals, second half) ----------------------------------


def test_fixturedef_caches_one_value_with_its_finalizers(pytester: pytest.Pytester) -> None:
    items = collect_items(
        pytester,
        "import pytest\n@pytest.fixture\ndef f():\n    return 1\ndef test_a(f):\n    pass\n",
    )
    graph = pytest_internals.fixture_graph(items[0])
    (definition,) = graph["f"]
    assert isinstance(definition, pytest.FixtureDef)
    assert definition.cached_result is None and definition._finalizers == []
    for name in ("execute", "finish", "cache_key"):
        assert callable(getattr(pytest.FixtureDef, name))
    assert list(inspect.signature(pytest.FixtureDef.execute).parameters) == ["self", "request"]
    assert list(inspect.signature(pytest.FixtureDef.finish).parameters) == ["self", "request"]


def test_setup_state_is_on_the_session(pytester: pytest.Pytester) -> None:
    import _pytest.runner

    items = collect_items(pytester, "def test_a():\n    pass\n")
    assert isinstance(items[0].session._setupstate, _pytest.runner.SetupState)
    for name in ("setup", "addfinalizer", "teardown_exact"):
        assert callable(getattr(_pytest.runner.SetupState, name))


def test_runner_functions_the_threads_use() -> None:
    import _pytest.runner

    signature = inspect.signature(_pytest.runner.runtestprotocol)
    assert list(signature.parameters) == ["item", "log", "nextitem"]
    assert list(inspect.signature(_pytest.runner._update_current_test_var).parameters) == [
        "item",
        "when",
    ]
    # pytest calls it by its module-level name, which is what gets replaced
    source = inspect.getsource(_pytest.runner.pytest_runtest_teardown)
    assert "_update_current_test_var(item, None)" in source


def test_capture_manager_methods_and_sys_capture_classes(pytestconfig: pytest.Config) -> None:
    import _pytest.capture

    capman = pytestconfig.pluginmanager.getplugin("capturemanager")
    for name in ("item_capture", "set_fixture", "unset_fixture", "global_and_fixture_disabled"):
        assert callable(getattr(capman, name))
    for cls in (_pytest.capture.SysCapture, _pytest.capture.SysCaptureBinary):
        assert hasattr(cls, "EMPTY_BUFFER")
    assert "SysCapture" in inspect.getsource(_pytest.capture)  # capsys builds on it


def test_logging_plugin_runs_each_phase_through_runtest_for(pytestconfig: pytest.Config) -> None:
    from _pytest.logging import LogCaptureHandler, caplog_handler_key, caplog_records_key

    plugin = pytestconfig.pluginmanager.getplugin("logging-plugin")
    assert callable(plugin._runtest_for)
    for name in ("formatter", "log_level", "log_cli_handler"):
        assert hasattr(plugin, name)
    assert "self._runtest_for(item" in inspect.getsource(type(plugin).pytest_runtest_setup)
    assert LogCaptureHandler and caplog_handler_key and caplog_records_key


def test_warnings_plugin_catches_warnings_per_item(pytester: pytest.Pytester) -> None:
    import _pytest.warnings

    parameters = list(inspect.signature(_pytest.warnings.catch_warnings_for_item).parameters)
    assert parameters[:4] == ["config", "ihook", "when", "item"]
    source = inspect.getsource(_pytest.warnings.pytest_runtest_protocol)
    assert "catch_warnings_for_item(" in source
    items = collect_items(
        pytester,
        "import pytest\n@pytest.mark.filterwarnings('ignore:quiet')\ndef test_a():\n    pass\n",
    )
    filters = pytest_internals.configured_warning_filters(items[0].config, items[0])
    assert any(f[0] == "ignore" and f[1] is not None and f[1].pattern == "quiet" for f in filters)
    # catch_warnings(record=True) sets these two; the threads' router sets them the same way
    assert callable(warnings._showwarnmsg_impl)  # type: ignore[attr-defined]
    assert callable(warnings._showwarning_orig)  # type: ignore[attr-defined]


def test_assertion_hooks_are_module_attributes_read_by_rewritten_asserts() -> None:
    import _pytest.assertion.rewrite
    from _pytest.assertion import util

    for name in ("_reprcompare", "_assertion_pass", "_config"):
        assert hasattr(util, name)
    assert "util._reprcompare" in inspect.getsource(_pytest.assertion.rewrite._call_reprcompare)
    before = util._reprcompare  # what pytest set for this test

    def mine(op: str, left: object, right: object) -> None:
        return None

    restore = pytest_internals.thread_local_assertion_hooks()
    try:
        util._reprcompare = mine
        seen = []
        thread = threading.Thread(target=lambda: seen.append(util._reprcompare))
        thread.start()
        thread.join()
        here = util._reprcompare
    finally:
        restore()
        util._reprcompare = before
    assert here is mine
    assert seen == [before]  # another thread still sees the value from before


def test_terminal_reporter_writes_through_its_tw(pytester: pytest.Pytester) -> None:
    """silence_terminal swaps ``TerminalReporter._tw`` for a writer built by
    ``_pytest.config.create_terminal_writer``."""
    import io

    config = pytest_internals.prepare_config(["-p", "no:cacheprovider"], [])
    try:
        pytest_internals.configure(config)
        sink = io.StringIO()
        pytest_internals.silence_terminal(config, sink)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        assert reporter is not None
        reporter.write_line("to the sink")
        assert "to the sink" in sink.getvalue()
        assert config.get_terminal_writer() is reporter._tw
    finally:
        pytest_internals.unconfigure(config)


def test_global_capturing_can_be_restarted(pytestconfig: pytest.Config) -> None:
    """restart_global_capture relies on ``CaptureManager._global_capturing`` (a MultiCapture
    with ``stop_capturing``) and the public start/suspend methods."""
    capman = pytestconfig.pluginmanager.get_plugin("capturemanager")
    assert hasattr(capman, "_global_capturing")
    for name in ("start_global_capturing", "suspend_global_capture"):
        assert callable(getattr(capman, name))
    from _pytest.capture import MultiCapture

    assert callable(MultiCapture.stop_capturing)


def test_tmp_path_factory_is_rebuilt_from_the_config(pytester: pytest.Pytester) -> None:
    config = pytest_internals.prepare_config(["-p", "no:cacheprovider"], [])
    try:
        pytest_internals.configure(config)
        base = pytester.path / "worker-base"
        pytest_internals.use_basetemp(config, str(base))
        assert pytest_internals.main_basetemp(config) == base
        # legacypath's tmpdir_factory returns config._tmpdirhandler: it wraps the new factory
        handler = config._tmpdirhandler  # type: ignore[attr-defined]
        assert isinstance(handler, pytest.TempdirFactory)
        assert Path(str(handler.getbasetemp())) == base.resolve()
    finally:
        pytest_internals.unconfigure(config)


def test_legacypath_s_tmpdir_factory_is_the_config_s_handler() -> None:
    from _pytest import legacypath

    source = inspect.getsource(legacypath)
    assert "return request.config._tmpdirhandler" in source
    assert '"_tmpdirhandler"' in source  # set by its pytest_configure


def test_session_setup_state_tears_down_exactly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    items, _ = pytester.inline_genitems()
    session = items[0].session
    assert callable(session._setupstate.teardown_exact)
    pytest_internals.teardown_all(session)  # nothing set up: nothing to do, no error


def test_junitxml_writer_is_in_the_stash_where_its_fixtures_look(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_it(pytestconfig):
            from _pytest.junitxml import LogXML
            from pytest_parproc.plugin import pytest_internals

            writer = pytest_internals.junit_xml(pytestconfig)
            assert isinstance(writer, LogXML)
            assert callable(writer.add_global_property) and callable(writer.node_reporter)
            assert callable(writer.node_reporter("x").add_attribute)
        """
    )
    pytester.runpytest("-p", "no:parproc", "--junitxml=out.xml").assert_outcomes(passed=1)


def test_logging_plugin_levels_and_handlers_of_the_log_file_and_live_logging(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import logging, threading
        from pytest_parproc.plugin import pytest_internals

        def test_it(pytestconfig):
            handlers = pytest_internals.log_handlers(pytestconfig)
            assert [(level, live) for _, level, live in handlers] == [
                (logging.INFO, False), (logging.WARNING, True)
            ]
            live = handlers[1][0]
            pytest_internals.set_live_log_phase(live, "call")
            assert live._when == "call"
            restore = pytest_internals.live_log_phases_from(threading.current_thread(), live)
            other = threading.Thread(target=live.set_when, args=("teardown",))
            other.start()
            other.join()
            assert live._when == "call"  # another thread's phase does not count
            restore()
            other = threading.Thread(target=live.set_when, args=("teardown",))
            other.start()
            other.join()
            assert live._when == "teardown"
        """
    )
    result = pytester.runpytest(
        "-p", "no:parproc", "--log-file=x.log", "--log-file-level=INFO", "--log-cli-level=WARNING"
    )
    result.assert_outcomes(passed=1)


REPORTED = """
import pytest

@pytest.mark.parametrize("n", [1, 2])
def test_p(n, record_property):
    record_property("n", n)
    print("out")
    assert n == 1
"""


def _reports(pytester: pytest.Pytester) -> tuple[pytest.Config, list[Any]]:
    from _pytest.runner import runtestprotocol

    items = collect_items(pytester, REPORTED)
    return items[0].config, [(item, runtestprotocol(item, log=False)) for item in items]


def test_report_codec_sends_plain_reports_as_they_are(pytester: pytest.Pytester) -> None:
    """Where only pytest serializes reports, a test report travels pickled as itself and comes
    back equal to what the hooks' round trip gives; data from the hooks still loads."""
    import pickle

    config, runs = _reports(pytester)
    dump, load = pytest_internals.report_codec(config)
    assert dump.__name__ == "dump_directly" and load.__name__ == "load_directly"
    hook = config.hook
    for item, reports in runs:
        for report in reports:
            assert dump(report) is report
            data = hook.pytest_report_to_serializable(config=config, report=report)
            expected = hook.pytest_report_from_serializable(config=config, data=data)
            travelled = load(pickle.loads(pickle.dumps(dump(report))), item)
            from_data = load(hook.pytest_report_to_serializable(config=config, report=report), item)
            for loaded in (travelled, from_data):
                assert type(loaded) is pytest.TestReport
                assert loaded.nodeid == item.nodeid == expected.nodeid
                # The hooks' round trip leaves a "$report_type" attribute (pytest-xdist's
                # reports have it too); a serial run's reports, and these, do not.
                ignored = {"longrepr": None, "$report_type": None}
                assert {**vars(loaded), **ignored} == {**vars(expected), **ignored}
                assert str(loaded.longrepr) == str(expected.longrepr)
    failed = runs[1][1][1]
    assert failed.failed and "assert 2 == 1" in str(
        load(pickle.loads(pickle.dumps(failed)), runs[1][0]).longrepr
    )


def test_report_codec_takes_the_hooks_where_a_plugin_implements_them(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        def pytest_report_from_serializable(config, data):
            return None
        def pytest_report_to_serializable(config, report):
            return None
        """
    )
    config, runs = _reports(pytester)
    dump, load = pytest_internals.report_codec(config)
    assert dump.__name__ == "dump" and load.__name__ == "load"
    item, reports = runs[0]
    assert load(dump(reports[0]), item).nodeid == item.nodeid


# -- shared fixtures' (pytest_internals.fixture_runs) -----------------------------------------

PARAMETRIZED_SESSION_FIXTURE = """
import pytest

TORN_DOWN = []

@pytest.fixture(scope="session", params=[10, 20])
def value(request):
    yield request.param
    TORN_DOWN.append(request.param)

def test_a(value):
    pass
"""


def test_a_fixture_set_up_and_torn_down_outside_any_test(pytester: pytest.Pytester) -> None:
    from pytest_parproc.plugin.pytest_internals import fixture_runs

    items = collect_items(pytester, PARAMETRIZED_SESSION_FIXTURE)
    session = items[0].session
    (definition,) = fixture_runs.definitions(session, "value")
    assert fixture_runs.definitions(session, "no_such_fixture") == ()
    assert definition in list(fixture_runs.every_definition(session))
    fixture_runs.enter_session(session)
    try:
        request = fixture_runs.subrequest(items[1], definition)
        assert (request.param, request.param_index) == (20, 1)
        assert fixture_runs.requesting_item(request) is items[1]
        definition.execute(request)
        assert definition.cached_result[0] == 20
        cached, finalizers = fixture_runs.detach(definition)
        assert definition.cached_result is None and definition._finalizers == []
        assert cached[0] == 20 and finalizers  # (the generator's teardown among them)
        fixture_runs.attach(definition, cached, [])
        assert fixture_runs.detach(definition) == (cached, [])
        fixture_runs.finish_detached(definition, request, cached, finalizers)
        assert definition.cached_result is None
        assert items[1].module.TORN_DOWN == [20]
        assert "pytest_fixture_post_finalizer" in inspect.getsource(pytest.FixtureDef)
    finally:
        held = fixture_runs.forget_set_up_nodes(session)
    assert [node for node, _ in held] == [session]


def test_an_error_cached_as_pytest_caches_it_is_raised_again(pytester: pytest.Pytester) -> None:
    from pytest_parproc.plugin.pytest_internals import fixture_runs

    items = collect_items(
        pytester,
        "import pytest\n@pytest.fixture(scope='session')\ndef f():\n    return 1\n"
        "def test_a(f):\n    pass\n",
    )
    session = items[0].session
    (definition,) = fixture_runs.definitions(session, "f")
    fixture_runs.enter_session(session)
    try:
        request = fixture_runs.subrequest(items[0], definition)
        error = RuntimeError("boom")
        fixture_runs.cache_error(definition, request, error, None)
        assert fixture_runs.cached_error(definition.cached_result) is error
        with pytest.raises(RuntimeError, match="boom"):
            definition.execute(request)
    finally:
        fixture_runs.forget_set_up_nodes(session)


def test_catch_warnings_for_item_takes_config_hook_when_and_item() -> None:
    from _pytest.warnings import catch_warnings_for_item

    assert list(inspect.signature(catch_warnings_for_item).parameters)[:4] == [
        "config",
        "ihook",
        "when",
        "item",
    ]


def test_catching_logs_takes_a_handler_and_a_level() -> None:
    from _pytest.logging import LogCaptureHandler, catching_logs

    assert list(inspect.signature(catching_logs).parameters) == ["handler", "level"]
    assert hasattr(LogCaptureHandler(), "stream")


def test_capture_manager_global_capture_methods(pytestconfig: pytest.Config) -> None:
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")
    for name in (
        "is_globally_capturing",
        "resume_global_capture",
        "suspend_global_capture",
        "read_global_capture",
    ):
        assert callable(getattr(capman, name))
    assert "in_" in inspect.signature(capman.suspend_global_capture).parameters


# -- the live progress's (pytest_internals.terminal) -------------------------------------------


def test_the_terminal_writer_keeps_its_file_as_file(pytestconfig: pytest.Config) -> None:
    from _pytest._io.terminalwriter import TerminalWriter

    from pytest_parproc.plugin.pytest_internals.terminal import terminal_file

    file = io.StringIO()
    writer = TerminalWriter(file)
    assert writer._file is file
    writer.write("abc", flush=True)
    assert file.getvalue() == "abc"
    assert terminal_file(pytestconfig) is pytestconfig.get_terminal_writer()._file


def test_a_test_keeps_its_captured_sections_on_the_item(pytester: pytest.Pytester) -> None:
    # pytest adds each phase's captured output to item._report_sections and never empties it:
    # a test run again alone (the threading backend's confirmation) must start from none
    pytester.makepyfile("def test_a():\n    print('hello')\n")
    items, _ = pytester.inline_genitems("-p", "no:syrupy")
    item = items[0]
    assert item._report_sections == []
    item.add_report_section("call", "stdout", "hello")
    assert item._report_sections == [("call", "stdout", "hello")]
    thread_internals.forget_report_sections(item)
    assert item._report_sections == []


def test_direct_parametrization_stands_a_pseudo_fixture_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.fixture\n"
        "def caplog_like():\n    return 1\n"
        "@pytest.mark.parametrize('extras', [1])\n"
        "@pytest.mark.parametrize('value', [1], indirect=False)\n"
        "def test_a(extras, value, caplog_like):\n    pass\n"
    )
    items, _ = pytester.inline_genitems("-p", "no:syrupy")
    assert thread_internals.direct_parameters(items[0]) == {"extras", "value"}


def test_request_fixturedef_is_made_for_each_request_on_pytest_9() -> None:
    definition = thread_internals._request_fixturedef()
    if int(pytest.__version__.split(".")[0]) >= 9:
        assert definition is not None and issubclass(definition, pytest.FixtureDef)
        assert "A new one is generated on-demand" in (definition.__doc__ or "")


def test_junitxml_keeps_suite_properties_in_a_list(pytester: pytest.Pytester) -> None:
    # record_testsuite_property appends to LogXML.global_properties: a test run again alone
    # (the threading backend's confirmation) must not record its values twice
    pytester.makepyfile(
        "def test_a(record_testsuite_property):\n"
        "    record_testsuite_property('k', 'v')\n"
        "    record_testsuite_property('k', 'v')\n"
    )
    seen = []

    class Probe:
        def pytest_runtest_setup(self, item: pytest.Item) -> None:
            xml = pytest_internals.junit_xml(item.config)
            xml.global_properties.append(("k", "v"))  # as if a first run had recorded it
            seen.append(thread_internals.suite_properties_kept_once(item.config))

        def pytest_runtest_teardown(self, item: pytest.Item) -> None:
            xml = pytest_internals.junit_xml(item.config)
            assert xml.global_properties == [("k", "v")] * 3
            seen[0]()
            assert xml.global_properties == [("k", "v")]

    junit = pytester.path / "j.xml"
    result = pytester.inline_run(f"--junitxml={junit}", "-p", "no:syrupy", plugins=[Probe()])
    result.assertoutcome(passed=1)
