"""The import architecture: the layers of pyproject.toml's import-linter contracts hold, and
no module of ours takes part in an import cycle (a module-level import or one inside a
function: both tie the modules together)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("harness", "mock_portal", "scenarios", "dashboards")


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module) & modules):
            if state.get(imported) == 1:
                found.append([*stack[stack.index(imported) :], imported])
            elif imported not in state:
                visit(imported)
        stack.pop()
        state[module] = 2

    for module in sorted(modules):
        if module not in state:
            visit(module)
    return found


def test_no_module_is_part_of_an_import_cycle() -> None:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    # A package's __init__ re-exporting its modules is not a cycle of design.
    modules = {m for m in graph.modules if not _is_package_init(graph, m)}
    cycles = _cycles(graph, modules)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def _is_package_init(graph: grimp.ImportGraph, module: str) -> bool:
    return bool(graph.find_children(module))


def test_the_harness_docstring_examples_hold() -> None:
    """The examples in the harness's docstrings (units, TOML, charts, the campaign's
    validators, ...) are run, so a reader can trust them."""
    import doctest
    import importlib
    import pkgutil

    import harness

    failed = []
    for info in pkgutil.walk_packages(harness.__path__, "harness."):
        result = doctest.testmod(importlib.import_module(info.name))
        if result.failed:
            failed.append(info.name)
    assert not failed
