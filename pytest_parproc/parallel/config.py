"""Call settings: ``parallel_config`` contexts, n_jobs resolution and ``pre_dispatch`` parsing."""

from __future__ import annotations

import ast
import contextvars
import functools
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Final

from .backends.base import ParallelBackendBase
from .backends.registry import default_backend_name, make_backend
from .cpu import cpu_count
from .nesting import nested_fallback


class _Unset:
    """Marks a setting that was not given, so an enclosing context or the default applies."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()

PREFER_VALUES = (None, "processes", "threads")
REQUIRE_VALUES = (None, "sharedmem")


@dataclass(frozen=True)
class ConfigState:
    """The settings in force: the merge of every enclosing ``parallel_config``."""

    backend: str | ParallelBackendBase | None = None
    backend_params: Mapping[str, Any] = field(default_factory=dict)
    n_jobs: int | None = None
    verbose: int = 0
    temp_folder: str | None = None
    max_nbytes: int | str | None = "1M"
    mmap_mode: str | None = "r"
    prefer: str | None = None
    require: str | None = None
    inner_max_num_threads: int | None = None


_state: contextvars.ContextVar[ConfigState] = contextvars.ContextVar(
    "pytest_parproc_config",
    default=ConfigState(),  # noqa: B039 - frozen, and its mapping is never mutated
)


def current_config() -> ConfigState:
    return _state.get()


class parallel_config:
    """Set defaults for the ``Parallel`` calls made inside a ``with`` block (or until
    ``unregister()``), like ``joblib.parallel_config``. Extra keyword arguments are passed to
    the backend's constructor."""

    def __init__(
        self,
        backend: str | ParallelBackendBase | _Unset | None = UNSET,
        *,
        n_jobs: int | _Unset | None = UNSET,
        verbose: int | _Unset = UNSET,
        temp_folder: str | _Unset | None = UNSET,
        max_nbytes: int | str | _Unset | None = UNSET,
        mmap_mode: str | _Unset | None = UNSET,
        prefer: str | _Unset | None = UNSET,
        require: str | _Unset | None = UNSET,
        inner_max_num_threads: int | _Unset | None = UNSET,
        **backend_params: Any,
    ) -> None:
        given: dict[str, Any] = {
            key: value
            for key, value in {
                "backend": backend,
                "n_jobs": n_jobs,
                "verbose": verbose,
                "temp_folder": temp_folder,
                "max_nbytes": max_nbytes,
                "mmap_mode": mmap_mode,
                "prefer": prefer,
                "require": require,
                "inner_max_num_threads": inner_max_num_threads,
            }.items()
            if value is not UNSET
        }
        if "n_jobs" in given and given["n_jobs"] is not None:
            given["n_jobs"] = check_n_jobs(given["n_jobs"], source="parallel_config")
        check_hints(given.get("prefer"), given.get("require"), source="parallel_config")
        constructed = {**backend_params}
        if not isinstance(inner_max_num_threads, _Unset) and inner_max_num_threads is not None:
            constructed["inner_max_num_threads"] = inner_max_num_threads
        if backend is None or isinstance(backend, _Unset):
            if constructed:
                # joblib's words: a user's pytest.raises(match=...) may depend on them
                raise ValueError(
                    f"parallel_config: inner_max_num_threads and other constructor parameters "
                    f"backend_params are only supported when backend is not None "
                    f"(got {', '.join(sorted(constructed))})"
                )
        elif not isinstance(backend, ParallelBackendBase):
            if not isinstance(backend, str):  # a multiprocessing context, or a TypeError
                given["backend"], from_object = backend_from_object(backend, "parallel_config")
                backend_params = {**from_object, **backend_params}
            made = make_backend(given["backend"], **backend_params)  # a bad name or parameter
            check_inner_threads(made, given.get("inner_max_num_threads"), "parallel_config")
        else:
            if backend_params:
                raise ValueError(
                    f"parallel_config: constructor parameters backend_params are only "
                    f"supported when backend is a string, not the instance {backend!r} "
                    f"(got {', '.join(sorted(backend_params))})"
                )
            check_inner_threads(backend, given.get("inner_max_num_threads"), "parallel_config")
        if backend_params:
            given["backend_params"] = dict(backend_params)
        elif "backend" in given:
            given["backend_params"] = {}
        self._new_state = replace(_state.get(), **given)
        self._token: contextvars.Token[ConfigState] | None = _state.set(self._new_state)

    def unregister(self) -> None:
        if self._token is not None:
            _state.reset(self._token)
            self._token = None

    def __enter__(self) -> ConfigState:
        return self._new_state

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.unregister()


class parallel_backend(parallel_config):
    """joblib's older spelling: ``parallel_backend("threading", n_jobs=2)``; n_jobs defaults
    to -1 (all CPUs) as in joblib."""

    def __init__(
        self,
        backend: str | ParallelBackendBase,
        n_jobs: int = -1,
        inner_max_num_threads: int | None = None,
        **backend_params: Any,
    ) -> None:
        super().__init__(
            backend,
            n_jobs=n_jobs,
            inner_max_num_threads=inner_max_num_threads,
            **backend_params,
        )


def check_hints(prefer: object, require: object, source: str) -> None:
    """joblib's checks of ``prefer`` and ``require``, in joblib's words, after ``source``."""
    if prefer not in PREFER_VALUES:
        raise ValueError(
            f"{source}: prefer={prefer} is not a valid backend hint, expected one of "
            f"{PREFER_VALUES}"
        )
    if require not in REQUIRE_VALUES:
        raise ValueError(
            f"{source}: require={require} is not a valid backend constraint, expected one of "
            f"{REQUIRE_VALUES}"
        )
    if prefer == "processes" and require == "sharedmem":
        raise ValueError(
            f"{source}: prefer == 'processes' and require == 'sharedmem' are inconsistent "
            "settings: processes do not share the caller's memory"
        )


def check_inner_threads(backend: ParallelBackendBase, value: object, source: str) -> None:
    """``inner_max_num_threads`` only where the backend sets its workers' thread pools."""
    if value is not None and not backend.supports_inner_max_num_threads:
        raise ValueError(
            f"{source}: {type(backend).__name__} does not accept setting the "
            f"inner_max_num_threads argument (backend {backend.name!r} does not limit its "
            "workers' thread pools; use 'loky')"
        )


def backend_from_object(backend: object, source: str) -> tuple[str, dict[str, Any]]:
    """A backend given as an object that is neither a name nor a ``ParallelBackendBase``: a
    ``multiprocessing`` context means the multiprocessing backend with that context, as in
    joblib; anything else is a TypeError that says what was given."""
    if hasattr(backend, "Pool") and hasattr(backend, "Lock"):
        return "multiprocessing", {"context": backend}
    kind = f"{type(backend).__module__}.{type(backend).__qualname__}"
    hint = ""
    if kind.startswith("joblib."):
        hint = (
            "; joblib's own backend objects cannot drive this engine: pass the backend's "
            "name, or register a pytest_parproc backend"
        )
    raise TypeError(
        f"{source}: backend must be a name (str), a pytest_parproc ParallelBackendBase or a "
        f"multiprocessing context, got {backend!r} of type {kind}{hint}"
    )


def check_n_jobs(n_jobs: object, source: str = "Parallel") -> int:
    """n_jobs as joblib reads it: ``int(n_jobs)`` (so ``"2"``, ``2.7`` and ``True`` are taken);
    a value that does not convert is a ValueError, 0 too. ``source`` names where it came from."""
    try:
        value = operator.index(n_jobs) if hasattr(n_jobs, "__index__") else int(n_jobs)  # type: ignore[call-overload]
    except (ValueError, OverflowError):
        raise ValueError(
            f"{source}: n_jobs could not be converted to int: got {n_jobs!r}"
        ) from None
    except TypeError:
        raise TypeError(
            f"{source}: n_jobs must be an int, or something int() converts, or None; got "
            f"{n_jobs!r} of type {type(n_jobs).__name__}"
        ) from None
    if value == 0:
        raise ValueError(
            f"{source}: n_jobs == 0 in Parallel has no meaning (got {n_jobs!r}); use 1 for no "
            "parallelism, -1 for all CPUs"
        )
    return value


def resolve_n_jobs(
    n_jobs: int | None,
    source: str = "Parallel",
    backend: ParallelBackendBase | None = None,
    context: bool = True,
) -> int:
    """joblib's rules: None -> the context's value (unless ``context`` is false) or the
    backend's default (1); -1 -> all CPUs (the backend's, for a cluster); -k -> cpus + 1 - k."""
    if n_jobs is None:
        n_jobs = _state.get().n_jobs if context else None
        if n_jobs is None:
            default = 1 if backend is None else backend.default_n_jobs
            if default > 0:
                return default
            n_jobs = default
        else:
            source = "parallel_config"
    value = check_n_jobs(n_jobs, source)
    if value < 0:
        cpus = None if backend is None else backend.available_cpus()
        return max(1, (cpu_count() if cpus is None else cpus) + 1 + value)
    return value


@dataclass(frozen=True)
class Choice:
    """The backend of one call, and whether the context's n_jobs still applies to it (not
    where ``require='sharedmem'`` replaced the context's backend by threads: then 1, as in
    joblib)."""

    backend: ParallelBackendBase
    context_n_jobs: bool = True


def choose_backend(
    backend: object,
    prefer: str | None,
    require: str | None,
    params: Mapping[str, Any] | None = None,
) -> Choice:
    """The backend for one call, from its explicit argument, the context, hints and nesting.
    ``params`` are the call's own backend parameters (``Parallel(initializer=...)``). A
    backend without a nesting level gets the one of where it is called (0 at the top), as in
    joblib."""
    choice = _choose(backend, prefer, require, params)
    if choice.backend.nesting_level is None:
        nested = nested_fallback()
        choice.backend.nesting_level = 0 if nested is None else nested[1]
    return choice


def _choose(
    backend: object,
    prefer: str | None,
    require: str | None,
    params: Mapping[str, Any] | None,
) -> Choice:
    state = _state.get()
    explicit = backend is not None
    given = dict(params or {})
    context_params: Mapping[str, Any] = {}
    if backend is None and state.backend is not None:
        backend, context_params = state.backend, state.backend_params
    if backend is None:
        nested = nested_fallback()
        if nested is not None:
            name, level = nested
            return Choice(make_backend(name, nesting_level=level))
        if prefer == "threads" or require == "sharedmem":
            # threads the call did not name: as in joblib, its backend parameters (an
            # initializer) do not apply to them
            return Choice(make_backend("threading"))
        name = default_backend_name()
        chosen = make_backend(name, **given)
        if prefer == "processes" and chosen.supports_sharedmem:
            chosen = make_backend("loky", **given)  # the default was made threads (joblib's rule)
        return Choice(chosen)
    if isinstance(backend, ParallelBackendBase):
        if given:
            raise ValueError(
                f"Parallel: backend parameters ({', '.join(sorted(given))}) are only "
                f"supported with a backend name, not the instance {backend!r}"
            )
        instance = backend
    else:
        if not isinstance(backend, str):
            backend, context_params = backend_from_object(backend, "Parallel")
        instance = make_backend(backend, **{**context_params, **given})
    if require == "sharedmem" and not instance.supports_sharedmem:
        if explicit:
            raise ValueError(
                f"Backend {instance.name!r} does not support shared memory, which "
                "require='sharedmem' asks for; use backend='threading'"
            )
        return Choice(make_backend("threading"), context_n_jobs=False)
    return Choice(instance)


_ALLOWED_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Div: operator.truediv,
}


def parse_pre_dispatch(pre_dispatch: int | str, n_jobs: int) -> int | None:
    """How many tasks may be dispatched ahead: an int, 'all' (None: no limit), or an arithmetic
    expression of ``n_jobs`` such as '2 * n_jobs' (parsed with ``ast``, never evaluated)."""
    if isinstance(pre_dispatch, bool) or not isinstance(pre_dispatch, (int, str)):
        raise TypeError(f"pre_dispatch must be an int or a string, got {pre_dispatch!r}")
    if isinstance(pre_dispatch, int):
        if pre_dispatch < 1:
            raise ValueError(f"pre_dispatch must be at least 1, got {pre_dispatch}")
        return pre_dispatch
    return _parse_expression(pre_dispatch, n_jobs)


@functools.lru_cache(maxsize=64)
def _parse_expression(pre_dispatch: str, n_jobs: int) -> int | None:
    # (cached: a call deep in a recursion must not need ast's parser, which fails there)
    if pre_dispatch.strip() == "all":
        return None
    try:
        tree = ast.parse(pre_dispatch.strip(), mode="eval")
        value = _evaluate(tree.body, n_jobs)
    except (SyntaxError, ValueError, ZeroDivisionError) as error:
        raise ValueError(
            f"pre_dispatch={pre_dispatch!r} is not 'all', an int or an arithmetic expression of "
            f"n_jobs (such as '2 * n_jobs'): {error}"
        ) from None
    return max(1, int(value))


def _evaluate(node: ast.expr, n_jobs: int) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        if isinstance(node.value, bool):
            raise ValueError(f"{node.value!r} is not a number")
        return float(node.value)
    if isinstance(node, ast.Name) and node.id == "n_jobs":
        return float(n_jobs)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, n_jobs)
    if isinstance(node, ast.BinOp) and type(node.op) in _ALLOWED_OPERATORS:
        apply = _ALLOWED_OPERATORS[type(node.op)]
        return float(apply(_evaluate(node.left, n_jobs), _evaluate(node.right, n_jobs)))
    raise ValueError(f"{ast.unparse(node)!r} is not allowed")


def effective_n_jobs(n_jobs: int | None = -1) -> int:
    """The number of workers a ``Parallel(n_jobs)`` call would use here, with the backend
    of the current context."""
    state = _state.get()
    choice = choose_backend(None, state.prefer, state.require)
    backend = choice.backend
    return backend.effective_n_jobs(
        resolve_n_jobs(n_jobs, backend=backend, context=choice.context_n_jobs)
    )
