"""How many CPUs this process may really use: core count, affinity, cgroup quota, env override."""

from __future__ import annotations

import math
import os
from collections.abc import Callable

# The first is ours; the second is honoured so that joblib users' existing setting carries over.
_ENV_VARIABLES = ("PYTEST_PARPROC_MAX_CPUS", "LOKY_MAX_CPU_COUNT")

# Read at call time (not bound as a default argument) so tests can point it at a fake tree.
_CGROUP_ROOT = "/sys/fs/cgroup"

# cgroup v1 mounts the cpu controller under one of these names, depending on the distribution
# (often "cpu" is a symlink to "cpu,cpuacct", but not everywhere).
_CGROUP_V1_DIRECTORIES = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def cpu_count(only_physical_cores: bool = False) -> int:
    """Return the number of CPUs this process may use, never less than 1.

    The minimum of the machine's CPU count (physical cores when ``only_physical_cores`` is true
    and psutil knows them, logical CPUs otherwise), the affinity mask, the cgroup CPU quota
    (rounded up) and the ``PYTEST_PARPROC_MAX_CPUS`` / ``LOKY_MAX_CPU_COUNT`` environment
    variables. Raises ValueError when one of those variables is set to anything but a positive
    integer. Nothing is cached: every call reads the current state (a few small file reads).
    """
    counts = [_machine_cpu_count(only_physical_cores)]
    affinity = _affinity_cpu_count()
    if affinity is not None:
        counts.append(affinity)
    quota = _cgroup_cpu_limit(_CGROUP_ROOT)
    if quota is not None:
        # A quota of 1.5 CPUs still lets two workers make progress; rounding down would waste it.
        counts.append(math.ceil(quota))
    counts.extend(_environment_limits())
    return max(1, min(counts))


def _machine_cpu_count(only_physical_cores: bool) -> int:
    """Logical CPUs of the machine, or physical cores when asked for and known."""
    logical = os.cpu_count() or 1
    if not only_physical_cores:
        return logical
    try:
        import psutil  # imported here: only this option needs it
    except ImportError:
        return logical
    physical = psutil.cpu_count(logical=False)
    # psutil answers None where the platform does not expose the topology.
    if not physical:
        return logical
    return min(physical, logical)


def _affinity_cpu_count() -> int | None:
    """CPUs in this process's affinity mask, or None where the platform cannot tell."""
    # getattr, not hasattr + attribute: typeshed hides sched_getaffinity off Linux, and
    # process_cpu_count only exists from Python 3.13. sched_getaffinity comes first because
    # it is the primitive; process_cpu_count is the portable spelling of the same question.
    sched_getaffinity: Callable[[int], set[int]] | None = getattr(os, "sched_getaffinity", None)
    if sched_getaffinity is not None:
        try:
            return len(sched_getaffinity(0))
        except OSError:
            pass
    process_cpu_count: Callable[[], int | None] | None = getattr(os, "process_cpu_count", None)
    if process_cpu_count is not None:
        return process_cpu_count()
    return None


def _cgroup_cpu_limit(root: str = _CGROUP_ROOT) -> float | None:
    """CPU quota (in CPUs, maybe fractional) of the cgroup mounted at ``root``, None if none.

    Looks at the cgroup v2 ``cpu.max`` and the cgroup v1 ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us`` pair and returns the smallest limit found. A missing, unreadable or
    malformed file counts as no limit: a wrong guess here must never stop a run.
    """
    limits = [_read_cgroup_v2_limit(os.path.join(root, "cpu.max"))]
    for directory in _CGROUP_V1_DIRECTORIES:
        limits.append(
            _read_cgroup_v1_limit(
                os.path.join(root, directory, "cpu.cfs_quota_us"),
                os.path.join(root, directory, "cpu.cfs_period_us"),
            )
        )
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def _read_cgroup_v2_limit(path: str) -> float | None:
    """Parse a cgroup v2 ``cpu.max`` ("$QUOTA $PERIOD", QUOTA may be "max")."""
    text = _read_small_file(path)
    if text is None:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _quota_over_period(fields[0], fields[1])


def _read_cgroup_v1_limit(quota_path: str, period_path: str) -> float | None:
    """Parse the cgroup v1 pair of files; a quota of -1 means no limit."""
    quota = _read_small_file(quota_path)
    if quota is None:
        return None
    period = _read_small_file(period_path)
    if period is None:
        return None
    return _quota_over_period(quota.strip(), period.strip())


def _quota_over_period(quota_text: str, period_text: str) -> float | None:
    """The quota in CPUs, or None when either number is not a positive integer."""
    try:
        quota = int(quota_text)
        period = int(period_text)
    except ValueError:
        return None
    # Negative quota is v1's "unlimited"; zero of either is nonsense we refuse to divide by.
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def _read_small_file(path: str) -> str | None:
    """The text of a pseudo-file, or None when it is missing, unreadable or not text."""
    try:
        with open(path, encoding="ascii") as file:
            return file.read(4096)
    # OSError: missing, permission denied, a directory; ValueError: UnicodeDecodeError.
    except (OSError, ValueError):
        return None


def _environment_limits() -> list[int]:
    """The limits set through _ENV_VARIABLES; raises ValueError on a value that is not one."""
    limits: list[int] = []
    for name in _ENV_VARIABLES:
        value = os.environ.get(name)
        # An empty value is how shells and CI templates spell "unset"; treat it that way.
        if value is None or not value.strip():
            continue
        message = f"{name} must be a positive integer, got {value!r}"
        try:
            limit = int(value)
        except ValueError:
            raise ValueError(message) from None
        if limit <= 0:
            raise ValueError(message)
        limits.append(limit)
    return limits
