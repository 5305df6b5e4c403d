"""Each concurrent test's own warnings, though the warnings filters are one per process (until
Python 3.14's context-aware warnings). The package docstring explains the whole approach.

While tests run in threads, the process's filters say "always", so every warning reaches one
hook on the thread that raised it. The hook decides with the filters of the test on that thread
(the configured ones plus its ``filterwarnings`` marks) and a registry of its own, as
``warnings.catch_warnings`` around each test does in a serial run.

``warnings.catch_warnings`` itself saves the process's filters on entry and puts them back on
exit: two threads doing so interleave, and one can leave its filters in place for everyone
(pytest's own traceback formatting does ``catch_warnings(); simplefilter("ignore")``). On a test
thread, ``catch_warnings`` and ``simplefilter``/``filterwarnings``/``resetwarnings`` act on that
thread's filters instead; elsewhere they act as usual.
"""

from __future__ import annotations

import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .capture import per_thread

#: (action, message regex, category, module regex, line number), as in ``warnings.filters``
WarningFilter = tuple[str, Any, type[Warning], Any, int]
_ACTIONS = ("error", "ignore", "always", "all", "default", "module", "once")


class _Filters:
    """One level of filters: a test's, or a ``catch_warnings`` block's inside it."""

    def __init__(self, filters: list[WarningFilter], log: list[Any] | None) -> None:
        self.filters = filters
        #: what was shown already, for "default", "module" and "once"
        self.seen: set[tuple[Any, ...]] = set()
        #: where shown warnings go (None: to the level below, as record=False does)
        self.log = log


class _Local(threading.local):
    def __init__(self) -> None:
        #: the test's own level first, then one per catch_warnings block it is in
        self.levels: list[_Filters] = []


_local = _Local()


def _on_test_thread() -> bool:
    return bool(_local.levels)


@contextmanager
def warnings_of_test(filters: list[WarningFilter] | None) -> Iterator[list[Any]]:
    """A test's warnings on its thread; the list fills as it runs."""
    caught: list[Any] = []
    if filters is None:  # warnings are not captured in this run (-p no:warnings)
        yield caught
        return
    _local.levels = [_Filters(list(filters), caught)]
    try:
        yield caught
    finally:
        _local.levels = []


class WarningsRouter:
    """Installed for the concurrent part of a run: the hook, and the per-thread replacements
    of ``catch_warnings`` and the filter functions."""

    def __init__(self, base_filters: list[WarningFilter]) -> None:
        #: warnings raised on threads that run no test (nodeid "" in the summary)
        self.unowned: list[Any] = []
        self._base = _Filters(list(base_filters), self.unowned)
        self._modules: dict[str, str] = {}
        self._lock = threading.Lock()

    @contextmanager
    def installed(self) -> Iterator[None]:
        module: Any = warnings
        saved_functions = {name: getattr(module, name) for name in _REPLACEMENTS}
        catch = warnings.catch_warnings
        saved_methods = catch.__enter__, catch.__exit__
        with warnings.catch_warnings():
            self._route_everything()
            for name, replacement in _REPLACEMENTS.items():
                setattr(
                    module, name, per_thread(saved_functions[name], replacement, _on_test_thread)
                )
            catch.__enter__ = _enter(saved_methods[0])  # type: ignore[method-assign]
            catch.__exit__ = _exit(saved_methods[1])  # type: ignore[method-assign]
            try:
                yield
            finally:
                catch.__enter__, catch.__exit__ = saved_methods  # type: ignore[method-assign]
                for name, function in saved_functions.items():
                    setattr(module, name, function)

    def _route_everything(self) -> None:
        module: Any = warnings
        module.filters[:] = [("always", None, Warning, None, 0)]
        module._filters_mutated()
        # What catch_warnings(record=True) does, with a hook instead of a list.append.
        module._showwarnmsg_impl = self.handle
        module.showwarning = module._showwarning_orig

    def repair(self) -> None:
        """Put the routing back if code left the process's filters or ``showwarning`` changed:
        a thread a test started, or a test calling ``logging.captureWarnings(True)``."""
        module: Any = warnings
        routed = module.filters == [("always", None, Warning, None, 0)]
        shown = module.showwarning is module._showwarning_orig  # logging.captureWarnings()
        if not routed or not shown or module._showwarnmsg_impl != self.handle:
            with self._lock:
                self._route_everything()

    def handle(self, message: warnings.WarningMessage) -> None:
        __tracebackhide__ = True
        levels = _local.levels or [self._base]
        top = levels[-1]
        text = str(message.message)
        category = message.category
        module = self._module(message.filename)
        action = _action(top.filters, text, category, module, message.lineno)
        if action == "error":
            raise message.message if isinstance(message.message, Warning) else category(text)
        if action == "ignore":
            return
        key: tuple[Any, ...] | None = None
        if action == "once":
            key = ("once", text, category)
        elif action == "module":
            key = (message.filename, text, category, 0)
        elif action == "default":
            key = (message.filename, text, category, message.lineno)
        if key is not None:
            if key in top.seen:
                return
            top.seen.add(key)
        log = next((level.log for level in reversed(levels) if level.log is not None), None)
        if log is not None:
            log.append(message)

    def _module(self, filename: str) -> str:
        """The module a filter's module pattern is matched against (warnings.warn uses the
        ``__name__`` of the code that warned; this hook only gets its file)."""
        found = self._modules.get(filename)
        if found is None:
            for name, module in list(sys.modules.items()):
                if getattr(module, "__file__", None) == filename:
                    found = name
                    break
            else:
                found = filename[:-3] if filename.lower().endswith(".py") else filename
            self._modules[filename] = found
        return found


def _action(
    filters: list[WarningFilter], text: str, category: type[Warning], module: str, lineno: int
) -> str:
    for action, message, kind, module_re, line in filters:
        if (
            (message is None or message.match(text))
            and issubclass(category, kind)
            and (module_re is None or module_re.match(module))
            and (line == 0 or lineno == line)
        ):
            return str(action)
    return str(getattr(warnings, "defaultaction", "default"))


# -- catch_warnings and the filter functions on a test thread ------------------------------


def _add(item: WarningFilter, append: bool) -> None:
    level = _local.levels[-1]
    if not append:
        if item in level.filters:
            level.filters.remove(item)
        level.filters.insert(0, item)
    elif item not in level.filters:
        level.filters.append(item)
    level.seen.clear()  # as CPython's registries are when the filters change


def _simplefilter(
    action: str, category: type[Warning] = Warning, lineno: int = 0, append: bool = False
) -> None:
    if action not in _ACTIONS:
        raise ValueError(f"invalid action: {action!r}")
    if not isinstance(lineno, int) or lineno < 0:
        raise ValueError("lineno must be an int >= 0")
    _add((action, None, category, None, lineno), append)


def _filterwarnings(
    action: str,
    message: str = "",
    category: type[Warning] = Warning,
    module: str = "",
    lineno: int = 0,
    append: bool = False,
) -> None:
    if action not in _ACTIONS:
        raise ValueError(f"invalid action: {action!r}")
    if not isinstance(lineno, int) or lineno < 0:
        raise ValueError("lineno must be an int >= 0")
    compiled_message = re.compile(message, re.I) if message else None
    compiled_module = re.compile(module) if module else None
    _add((action, compiled_message, category, compiled_module, lineno), append)


def _resetwarnings() -> None:
    _local.levels[-1].filters.clear()
    _local.levels[-1].seen.clear()


def _enter(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def __enter__(self: Any) -> Any:
        if not _on_test_thread() or self._module is not sys.modules["warnings"]:
            return original(self)
        if self._entered:
            raise RuntimeError(f"Cannot enter {self!r} twice")
        self._entered = True
        level = _Filters(list(_local.levels[-1].filters), [] if self._record else None)
        _local.levels.append(level)
        self.__dict__["_parproc_level"] = level
        if getattr(self, "_filter", None) is not None:  # catch_warnings(action=...), 3.11+
            _simplefilter(*self._filter)
        return level.log

    return __enter__


def _exit(original: Callable[..., Any]) -> Callable[..., Any]:
    def __exit__(self: Any, *exc_info: Any) -> Any:
        level = self.__dict__.pop("_parproc_level", None)
        if level is None:
            return original(self, *exc_info)
        if level in _local.levels:
            _local.levels.remove(level)
        return None

    return __exit__


#: the filter functions of the warnings module, and what they do on a test thread
_REPLACEMENTS: dict[str, Callable[..., Any]] = {
    "simplefilter": _simplefilter,
    "filterwarnings": _filterwarnings,
    "resetwarnings": _resetwarnings,
}
