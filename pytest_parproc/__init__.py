"""pytest-parproc: a joblib-style parallel engine, and a pytest plugin that runs tests on it.

The public names live in ``pytest_parproc.parallel`` and are re-exported here on first use
(see that package for why the import is lazy); its ``__all__`` is the one list of them.

PYTEST_DONT_REWRITE: a worker that builds its own session (``--par-start=collect``, dask) has
imported this package before pytest marks the plugin's modules for assertion rewriting, and
pytest would warn that it cannot rewrite them; a suite run with ``filterwarnings = error``
(jinja2's, attrs's, ...) would then fail in every such worker.
"""

from __future__ import annotations

from . import parallel

# Not ``typing.TYPE_CHECKING``: see ``pytest_parproc.parallel``.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .parallel import *  # noqa: F403 - the engine's public names, for type checkers
    from .plugin.shared.marking import shared_fixture as shared_fixture
    from .workerinfo import is_worker as is_worker
    from .workerinfo import worker_count as worker_count
    from .workerinfo import worker_id as worker_id

__version__ = "0.1.0"

_WORKER_INFO = ("is_worker", "worker_count", "worker_id")

__all__ = ["__version__", "shared_fixture", *_WORKER_INFO]
__all__ += parallel.__all__


def __getattr__(name: str) -> object:
    if name == "shared_fixture":  # (imports pytest: only where it is used)
        from .plugin.shared.marking import shared_fixture

        return shared_fixture
    if name in _WORKER_INFO:
        from . import workerinfo

        return getattr(workerinfo, name)
    if name in parallel.__all__:
        value = getattr(parallel, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *parallel.__all__, *_WORKER_INFO, "shared_fixture"])
