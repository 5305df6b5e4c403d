"""Why some of joblib's own tests fail against the engine: each is named here, with the joblib
internal it uses or the deliberate difference it meets (explained in the README's "Where we
differ from joblib, and why"). ``joblib_suite.py`` reports any other failure as unexplained.

Each entry is (a regular expression matched against the test's id, ``file::name[params]``,
from its start; the reason).
"""

from __future__ import annotations

import re

#: joblib backend objects (``joblib._parallel_backends`` instances, classes and subclasses)
#: passed where the engine takes a backend name or one of its own backends
_JOBLIB_BACKEND = "passes joblib's own backend objects or classes (joblib._parallel_backends)"
_BACKEND_PARAMS = r"\[.*backend[0-9]+\]"

INTERNAL: list[tuple[str, str]] = [
    (r"test_parallel::test_simple_parallel" + _BACKEND_PARAMS, _JOBLIB_BACKEND),
    (r"test_parallel::test_invalid_njobs" + _BACKEND_PARAMS, _JOBLIB_BACKEND),
    (r"test_parallel::test_main_thread_renamed_no_warning" + _BACKEND_PARAMS, _JOBLIB_BACKEND),
    (r"test_parallel::test_parallel_pretty_print" + _BACKEND_PARAMS, _JOBLIB_BACKEND),
    (
        r"test_config::test_threadpool_limitation_in_child_context_error" + _BACKEND_PARAMS,
        _JOBLIB_BACKEND,
    ),
    (r"test_config::test_parallel_config_constructor_params$", _JOBLIB_BACKEND),
    (r"test_parallel::test_backend_hinting_and_constraints_with_custom_backends", _JOBLIB_BACKEND),
    (r"test_parallel::test_directly_parameterized_backend_context_manager", _JOBLIB_BACKEND),
    (r"test_parallel::test_zero_worker_backend", _JOBLIB_BACKEND),
    (r"test_parallel::test_retrieval_context", _JOBLIB_BACKEND),
    (
        r"test_parallel::test_nested_backend_context_manager",
        "joblib's get_active_backend() (through _active_backend_type) and a joblib backend "
        "subclass",
    ),
    (
        r"test_parallel::test_backend_nesting_level",
        "reads the joblib backend instance that `with parallel_config(...) as config` gives "
        "(config['backend'].nesting_level)",
    ),
    (
        r"test_parallel::(test_njobs_converted_to_int|test_nested_backend_in_sequential)",
        "Parallel._effective_n_jobs() (private in joblib)",
    ),
    (
        r"test_parallel::test_multiple_generator_call_separated_gc\[.*-(threading|sequential)-",
        "Parallel._effective_n_jobs() (private in joblib)",
    ),
    (
        r"test_config::(test_global_parallel_backend|test_parallel_config_nested|"
        r"test_parallel_config_no_backend|test_parallel_config_params_explicit_set)",
        "isinstance(Parallel()._backend, <a joblib backend class>)",
    ),
    (
        r"test_parallel::test_backend_hinting_and_constraints\[",
        "type(Parallel()._backend) is <a joblib backend class>",
    ),
    (
        r"test_(parallel|config)::(test_external_backends|test_backend_context_manager|"
        r"test_parameterized_backend_context_manager|test_register_parallel_backend|"
        r"test_overwrite_default_backend)",
        "joblib's backend tables (BACKENDS, EXTERNAL_BACKENDS, parallel.DEFAULT_BACKEND) or "
        "parallel.get_active_backend()",
    ),
    (
        r"test_parallel::(test_backend_batch_statistics_reset|test_batching_auto_)",
        "a joblib backend's batching internals (_effective_batch_size, compute_batch_size)",
    ),
    (r"test_parallel::test_default_mp_context", "Parallel._backend_kwargs"),
    (
        r"test_parallel::(test_parallel_as_context_manager\[loky\]|test_error_capture)",
        "a backend's private pool attribute (_workers / _pool) and when joblib drops it",
    ),
    (
        r"test_parallel::test_parallel_with_interactively_defined_bound_method_loky",
        "the name of loky's process class (LokyProcess) in multiprocessing's debug log",
    ),
]

DIFFERENT: list[tuple[str, str]] = [
    (
        r"test_config::test_threadpool_limitation_in_child_context_error\[.*-"
        r"(multiprocessing|threading)\]",
        "inner_max_num_threads on a backend that cannot honour it is a ValueError, not "
        "joblib's AssertionError (an assert, which python -O removes)",
    ),
    (
        r"test_parallel::test_multiple_generator_call_separated_gc\[.*-loky-True\]",
        "a second call while a dropped generator's tasks are stopped runs, where joblib "
        "raises RuntimeError ('The executor underlying Parallel has been shutdown')",
    ),
]

#: tests that joblib's run collects and the engine's does not: parametrized over the contents
#: of joblib's BACKENDS table, which a backend registered through the engine does not join
NOT_COLLECTED = (
    "parametrized over joblib's BACKENDS table (a backend registered with the engine does not "
    "join it)"
)


def explain(test_id: str) -> tuple[str, str] | None:
    """("internal" or "different", the reason) for a known failure, else None."""
    for kind, table in (("internal", INTERNAL), ("different", DIFFERENT)):
        for pattern, reason in table:
            if re.match(pattern, test_id):
                return kind, reason
    return None
