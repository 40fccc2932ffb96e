"""The mock's module layout: no import circles, no reach into another module's privates, and
the pure modules (config, routes) importable without the server's dependencies."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mock_portal

PACKAGE = Path(mock_portal.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[tuple[str, str]]]:
    """Module -> (imported module, imported name) for every import, wherever it is written."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    out: dict[str, set[tuple[str, str]]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[tuple[str, str]] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in modules:  # `from . import auth`: the module itself
                        found.add((target, ""))
                    else:
                        found.add((base, alias.name))
            elif isinstance(node, ast.Import):
                found |= {(alias.name, "") for alias in node.names}
        out[name] = {(m, n) for m, n in found if m in modules and m != name}
    return out


def test_no_import_circles() -> None:
    graph = {m: {t for t, _ in targets} for m, targets in _imports().items()}
    # The package's lazy create_app is the one import that is not a dependency of the package.
    graph["mock_portal"].discard("mock_portal.app")
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(
                "import circle: " + " -> ".join([*path[path.index(module) :], module])
            )
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_no_module_imports_another_modules_private_names() -> None:
    private = sorted(
        f"{module} imports {target}.{name}"
        for module, targets in _imports().items()
        for target, name in targets
        if name.startswith("_") and not name.startswith("__")
    )
    assert private == []


def test_config_and_routes_import_without_aiohttp() -> None:
    code = (
        "import sys, mock_portal.config, mock_portal.routes\n"
        "assert 'aiohttp' not in sys.modules, 'aiohttp was imported'\n"
        "assert 'prometheus_client' not in sys.modules, 'prometheus_client was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
