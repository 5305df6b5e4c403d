"""cpu_count: the minimum of core count, affinity, cgroup quota and the environment override."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from pytest_parproc.parallel import cpu
from pytest_parproc.parallel.cpu import cpu_count

MACHINE_CPUS = 16
ENV_VARIABLES = ("PYTEST_PARPROC_MAX_CPUS", "LOKY_MAX_CPU_COUNT")


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Pin every input to a 16-CPU machine with no limit; return the (empty) cgroup root."""
    root = tmp_path / "cgroup"
    root.mkdir()
    monkeypatch.setattr(cpu, "_CGROUP_ROOT", str(root))
    monkeypatch.setattr(os, "cpu_count", lambda: MACHINE_CPUS)
    monkeypatch.setattr(
        os, "sched_getaffinity", lambda pid: set(range(MACHINE_CPUS)), raising=False
    )
    for name in ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return root


def write_v2(root: Path, content: str | bytes) -> None:
    path = root / "cpu.max"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def write_v1(root: Path, quota: str, period: str | None, directory: str = "cpu") -> None:
    controller = root / directory
    controller.mkdir()
    (controller / "cpu.cfs_quota_us").write_text(quota)
    if period is not None:
        (controller / "cpu.cfs_period_us").write_text(period)


# --- cgroup v2 -------------------------------------------------------------------------------


def test_v2_quota_is_read(tmp_path: Path) -> None:
    write_v2(tmp_path, "400000 100000\n")
    assert cpu._cgroup_cpu_limit(str(tmp_path)) == 4.0


def test_v2_max_means_no_limit(tmp_path: Path) -> None:
    write_v2(tmp_path, "max 100000\n")
    assert cpu._cgroup_cpu_limit(str(tmp_path)) is None


def test_v2_quota_limits_cpu_count(machine: Path) -> None:
    write_v2(machine, "300000 100000\n")
    assert cpu_count() == 3


def test_v2_max_leaves_cpu_count_alone(machine: Path) -> None:
    write_v2(machine, "max 100000\n")
    assert cpu_count() == MACHINE_CPUS


@pytest.mark.parametrize(
    ("content", "expected"),
    [("150000 100000", 2), ("250000 100000", 3), ("100001 100000", 2), ("50000 100000", 1)],
)
def test_v2_fractional_quota_rounds_up(machine: Path, content: str, expected: int) -> None:
    write_v2(machine, content)
    assert cpu._cgroup_cpu_limit(str(machine)) == pytest.approx(
        int(content.split()[0]) / int(content.split()[1])
    )
    assert cpu_count() == expected


# --- cgroup v1 -------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", ["cpu", "cpu,cpuacct"])
def test_v1_quota_is_read(tmp_path: Path, directory: str) -> None:
    write_v1(tmp_path, "200000\n", "100000\n", directory)
    assert cpu._cgroup_cpu_limit(str(tmp_path)) == 2.0


def test_v1_minus_one_means_no_limit(tmp_path: Path) -> None:
    write_v1(tmp_path, "-1\n", "100000\n")
    assert cpu._cgroup_cpu_limit(str(tmp_path)) is None


def test_v1_quota_limits_cpu_count_rounding_up(machine: Path) -> None:
    write_v1(machine, "250000\n", "100000\n", "cpu,cpuacct")
    assert cpu_count() == 3


def test_v1_minus_one_leaves_cpu_count_alone(machine: Path) -> None:
    write_v1(machine, "-1\n", "100000\n")
    assert cpu_count() == MACHINE_CPUS


def test_smallest_of_v1_and_v2_wins(tmp_path: Path) -> None:
    write_v2(tmp_path, "600000 100000")
    write_v1(tmp_path, "200000", "100000")
    assert cpu._cgroup_cpu_limit(str(tmp_path)) == 2.0


# --- broken or missing files -----------------------------------------------------------------


def test_missing_files_mean_no_limit(tmp_path: Path) -> None:
    assert cpu._cgroup_cpu_limit(str(tmp_path)) is None
    assert cpu._cgroup_cpu_limit(str(tmp_path / "does-not-exist")) is None


@pytest.mark.parametrize(
    "content",
    [
        "",
        "garbage",
        "max",
        "150000",
        "abc 100000",
        "150000 abc",
        "1.5 1",
        "0 100000",
        "-5 100000",
        "150000 0",
        "150000 100000 7",
        b"\xff\xfe 100000",
    ],
)
def test_malformed_v2_file_means_no_limit(machine: Path, content: str | bytes) -> None:
    write_v2(machine, content)
    assert cpu._cgroup_cpu_limit(str(machine)) is None
    assert cpu_count() == MACHINE_CPUS


@pytest.mark.parametrize(
    ("quota", "period"),
    [
        ("x", "100000"),
        ("200000", "y"),
        ("200000", "0"),
        ("0", "100000"),
        ("", ""),
        ("200000", None),
    ],
)
def test_malformed_v1_files_mean_no_limit(machine: Path, quota: str, period: str | None) -> None:
    write_v1(machine, quota, period)
    assert cpu._cgroup_cpu_limit(str(machine)) is None
    assert cpu_count() == MACHINE_CPUS


def test_unreadable_file_means_no_limit(machine: Path) -> None:
    # A directory where the file should be fails to read even for root, unlike chmod 000.
    (machine / "cpu.max").mkdir()
    assert cpu._cgroup_cpu_limit(str(machine)) is None
    assert cpu_count() == MACHINE_CPUS


def test_malformed_v2_does_not_hide_a_valid_v1_limit(tmp_path: Path) -> None:
    write_v2(tmp_path, "nonsense")
    write_v1(tmp_path, "300000", "100000")
    assert cpu._cgroup_cpu_limit(str(tmp_path)) == 3.0


# --- environment override --------------------------------------------------------------------


@pytest.mark.parametrize("name", ENV_VARIABLES)
def test_environment_variable_lowers_the_count(
    machine: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "3")
    assert cpu_count() == 3


@pytest.mark.parametrize("name", ENV_VARIABLES)
def test_environment_variable_never_raises_the_count(
    machine: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, str(MACHINE_CPUS * 4))
    assert cpu_count() == MACHINE_CPUS


def test_both_environment_variables_smallest_wins(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_PARPROC_MAX_CPUS", "5")
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "2")
    assert cpu_count() == 2


def test_environment_variable_and_cgroup_smallest_wins(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_v2(machine, "200000 100000")
    monkeypatch.setenv("PYTEST_PARPROC_MAX_CPUS", "7")
    assert cpu_count() == 2


def test_empty_environment_variable_counts_as_unset(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_PARPROC_MAX_CPUS", "")
    assert cpu_count() == MACHINE_CPUS


@pytest.mark.parametrize("name", ENV_VARIABLES)
@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5", "4 cores"])
def test_invalid_environment_variable_raises(
    machine: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name) as raised:
        cpu_count()
    assert repr(value) in str(raised.value)


# --- affinity and core count -----------------------------------------------------------------


def test_affinity_mask_limits_the_count(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 5, 9}, raising=False)
    assert cpu_count() == 3


def test_process_cpu_count_used_without_sched_getaffinity(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "process_cpu_count", lambda: 6, raising=False)
    assert cpu_count() == 6


def test_only_physical_cores_uses_psutil(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 8 if not logical else 16)
    assert cpu_count(only_physical_cores=True) == 8
    assert cpu_count() == MACHINE_CPUS


def test_only_physical_cores_falls_back_to_logical_when_unknown(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: None)
    assert cpu_count(only_physical_cores=True) == MACHINE_CPUS


def test_only_physical_cores_still_honours_the_limits(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 8 if not logical else 16)
    write_v2(machine, "200000 100000")
    assert cpu_count(only_physical_cores=True) == 2


# --- never below one -------------------------------------------------------------------------


def test_unknown_cpu_count_gives_one(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.delattr(os, "process_cpu_count", raising=False)
    assert cpu_count() == 1


def test_empty_affinity_mask_gives_one(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(), raising=False)
    assert cpu_count() == 1


def test_tiny_quota_gives_one(machine: Path) -> None:
    write_v2(machine, "1000 100000")
    assert cpu_count() == 1


def test_real_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    logical = cpu_count()
    physical = cpu_count(only_physical_cores=True)
    assert logical >= 1
    assert 1 <= physical <= logical
    assert logical <= (os.cpu_count() or 1)
