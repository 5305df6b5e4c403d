"""Call settings: ``parallel_config`` contexts, n_jobs resolution and ``pre_dispatch`` parsing."""

from __future__ import annotations

import ast
import contextvars
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
            check_n_jobs(given["n_jobs"], source="parallel_config")
        check_hints(given.get("prefer"), given.get("require"), source="parallel_config")
        if isinstance(backend, str):
            make_backend(backend, **backend_params)  # fail now on a bad name or parameter
        elif backend_params and not isinstance(backend, _Unset):
            raise TypeError("backend parameters can only be given with a backend name")
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
    if prefer not in PREFER_VALUES:
        raise ValueError(f"{source}: prefer={prefer!r} is not one of {PREFER_VALUES}")
    if require not in REQUIRE_VALUES:
        raise ValueError(f"{source}: require={require!r} is not one of {REQUIRE_VALUES}")


def check_n_jobs(n_jobs: object, source: str = "Parallel") -> int:
    """An int n_jobs, or a clear error: bools, floats and strings are refused, 0 is a ValueError.

    ``source`` names where the value came from, for the message."""
    if isinstance(n_jobs, bool) or not hasattr(n_jobs, "__index__"):
        raise TypeError(
            f"{source}: n_jobs must be an integer (or None), got {n_jobs!r} "
            f"of type {type(n_jobs).__name__}"
        )
    value = operator.index(n_jobs)
    if value == 0:
        raise ValueError(
            f"{source}: n_jobs=0 has no meaning; use 1 for no parallelism, -1 for all CPUs"
        )
    return value


def resolve_n_jobs(
    n_jobs: int | None, source: str = "Parallel", backend: ParallelBackendBase | None = None
) -> int:
    """joblib's rules: None -> the context's value or the backend's default (1); -1 -> all CPUs
    (the backend's, for a cluster); -k -> cpus + 1 - k."""
    if n_jobs is None:
        n_jobs = _state.get().n_jobs
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


def choose_backend(
    backend: str | ParallelBackendBase | None,
    prefer: str | None,
    require: str | None,
) -> ParallelBackendBase:
    """The backend for one call, from its explicit argument, the context, hints and nesting."""
    state = _state.get()
    explicit = backend is not None
    params: Mapping[str, Any] = {}
    if backend is None and state.backend is not None:
        backend, params = state.backend, state.backend_params
    if backend is None:
        nested = nested_fallback()
        if nested is not None:
            name, level = nested
            return make_backend(name, nesting_level=level)
        want_threads = prefer == "threads" or require == "sharedmem"
        name = "threading" if want_threads else default_backend_name()
        return make_backend(name)
    instance = backend if isinstance(backend, ParallelBackendBase) else None
    if instance is None:
        assert isinstance(backend, str)
        instance = make_backend(backend, **params)
    if require == "sharedmem" and not instance.supports_sharedmem:
        if explicit:
            raise ValueError(
                f"backend {instance.name!r} does not share memory with the caller, "
                "which require='sharedmem' asks for; use backend='threading'"
            )
        return make_backend("threading")
    return instance


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
    if isinstance(pre_dispatch, bool):
        raise TypeError(f"pre_dispatch must be an int or a string, got {pre_dispatch!r}")
    if isinstance(pre_dispatch, int):
        if pre_dispatch < 1:
            raise ValueError(f"pre_dispatch must be at least 1, got {pre_dispatch}")
        return pre_dispatch
    if not isinstance(pre_dispatch, str):
        raise TypeError(f"pre_dispatch must be an int or a string, got {pre_dispatch!r}")
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
    backend = choose_backend(None, state.prefer, state.require)
    return backend.effective_n_jobs(resolve_n_jobs(n_jobs, backend=backend))
