"""No import cycle inside a package: its modules' import-time imports form a DAG.

The graph is read from the source with `ast`, never by importing: an edge A -> B for
each `import B` / `from B import x` that runs when A is imported (module level, and
inside `if`/`try` blocks there). Imports inside functions run later, when the
function is called, and `if TYPE_CHECKING:` blocks never run, so neither is an edge.
`from P import name` is an edge to module P.name where that is a module of the
package, else to P. Importing P.Q also runs P's __init__, but that implicit edge to
a parent package is left out, as import checkers do: with it every package whose
__init__ re-exports a submodule would be a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_files(package: str) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file under the package."""
    files = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_imports(body: list[ast.stmt]):
    """The Import/ImportFrom statements of `body` that run when the module is imported."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from import_time_imports(node.body)
            yield from import_time_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from import_time_imports(block)
        elif isinstance(node, ast.With):
            yield from import_time_imports(node.body)
        # def/class bodies: run later (functions) or are not where imports belong; skipped.


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(package: str) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports at import time."""
    files = module_files(package)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in import_time_imports(tree.body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _absolute(node, name, path.name == "__init__.py")
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in files else source for alias in node.names]
            for target in targets:
                # `import a.b.c` names module a.b.c; keep the longest prefix that is one of ours.
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, colouring nodes)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_checker_finds_a_cycle_and_ignores_what_does_not_run_at_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse(
        "import x\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import y\n"
        "def f():\n    import z\ntry:\n    import w\nexcept ImportError:\n    pass\n"
    )
    assert [n.names[0].name for n in import_time_imports(tree.body)] == ["x", "TYPE_CHECKING", "w"]


PACKAGES = ["artifact", "runtime", "export", "serve"]


@pytest.mark.parametrize("package", PACKAGES)
def test_package_has_no_import_cycle(package):
    graph = import_graph(package)
    assert len(graph) > 1, f"no modules found under {package}/"
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle in {package}/: {' -> '.join(cycle)}"


def test_no_test_imports_another_test_or_conftest():
    """Tests share helpers through tests/support and benchmarks/tiny.py, never through each other."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                first, last = name.split(".")[0], name.split(".")[-1]
                if first in ("tests", "conftest") or last.startswith("test_"):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []
