"""The plugin's layout rules, checked on the source: one subpackage per runner, what both use
beside them importing from neither, and modules small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

import pytest_parproc.plugin as plugin_package
from pytest_parproc.plugin.processes.controller import ProcessController
from pytest_parproc.plugin.run import RunController
from pytest_parproc.plugin.threads.controller import ThreadController

PLUGIN = Path(plugin_package.__file__).parent
ENGINE = PLUGIN.parent / "parallel"
RUNNERS = ("processes", "threads")


def imported_modules(path: Path, package: str) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names (relative imports resolved)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize(
    "path",
    [
        path
        for path in [
            *sorted(PLUGIN.glob("*.py")),
            *sorted(PLUGIN.glob("shared/*.py")),
            *sorted(PLUGIN.glob("pytest_internals/*.py")),
        ]
        if path.name != "__init__.py" or path.parent.name != "plugin"
    ],
    ids=lambda path: str(path.relative_to(PLUGIN)),
)
def test_what_both_runners_use_imports_from_neither(path: Path) -> None:
    # (relative imports resolve against the module's own package)
    package = ".".join(["pytest_parproc", *path.relative_to(PLUGIN.parent).parent.parts])
    modules = imported_modules(path, package)
    runners = {
        module
        for module in modules
        for runner in RUNNERS
        if module == f"pytest_parproc.plugin.{runner}"
        or module.startswith(f"pytest_parproc.plugin.{runner}.")
    }
    assert not runners, f"{path.name} imports from a runner: {sorted(runners)}"


def test_the_hook_wiring_imports_a_runner_only_when_a_run_needs_it() -> None:
    tree = ast.parse((PLUGIN / "__init__.py").read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    for node in top_level:
        module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
        names = [module] + [alias.name for alias in node.names]
        assert not any(name.split(".")[0] in RUNNERS for name in names), ast.unparse(node)


def test_the_runners_do_not_import_each_other() -> None:
    for runner in RUNNERS:
        other = next(name for name in RUNNERS if name != runner)
        for path in sorted((PLUGIN / runner).glob("*.py")):
            modules = imported_modules(path, f"pytest_parproc.plugin.{runner}")
            crossing = sorted(m for m in modules if m.startswith(f"pytest_parproc.plugin.{other}"))
            assert not crossing, f"{runner}/{path.name} imports {crossing}"


def test_the_controllers_share_only_the_run_base() -> None:
    assert issubclass(ThreadController, RunController)
    assert issubclass(ProcessController, RunController)
    assert not issubclass(ThreadController, ProcessController)
    process_only = {"crashes", "session_errors", "crash_notes", "isolates", "durations"}
    options = plugin_package.options.ParprocOptions(
        n_jobs=2, backend="threading", max_worker_restart=0, sources={}
    )
    config = SimpleNamespace(stash=pytest.Stash())  # (a run's config is not needed here)
    controller = ThreadController(config, options)  # type: ignore[arg-type]
    assert not process_only & set(vars(controller)), "a process-only member on the threads side"


def test_the_engine_never_imports_pytest() -> None:
    for path in sorted(ENGINE.rglob("*.py")):
        modules = imported_modules(path, "pytest_parproc.parallel")  # relative ones stay inside
        assert not {m for m in modules if m.split(".")[0] in ("pytest", "_pytest")}, path


@pytest.mark.parametrize(
    "path", sorted(PLUGIN.rglob("*.py")), ids=lambda path: str(path.relative_to(PLUGIN))
)
def test_plugin_modules_stay_under_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400
