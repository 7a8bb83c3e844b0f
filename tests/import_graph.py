"""The import graph of the ``modelport`` package, read from the source (no import runs).

Used by ``tests/unit/test_layers.py`` and by the regroup script, which reads the same graph to drop the
allow-list entries a move has fixed. Function-level imports count: a cycle through one is still a cycle.
"""

from __future__ import annotations

import ast
import pathlib
from typing import NamedTuple

REPO = pathlib.Path(__file__).resolve().parents[1]


class Edge(NamedTuple):
    source: str  # importing module, dotted
    target: str  # imported module, dotted (a package's __init__ is the package's name)
    lazy: bool  # inside a function: runs when called, not at import
    line: int


def module_name(path: pathlib.Path, root: pathlib.Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: pathlib.Path = REPO) -> dict[str, pathlib.Path]:
    return {module_name(p, root): p for p in sorted((root / "modelport").rglob("*.py"))}


def edges(root: pathlib.Path = REPO) -> list[Edge]:
    """Every import of a modelport module by a modelport module. ``from pkg import name`` points at
    ``pkg.name`` when that is a module, else at ``pkg``."""
    known = modules(root)
    found: list[Edge] = []
    for name, path in known.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]

        def walk(node: ast.AST, lazy: bool) -> None:
            for child in ast.iter_child_nodes(node):
                inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                if isinstance(child, ast.Import):
                    for alias in child.names:
                        if alias.name.split(".")[0] == "modelport":
                            found.append(Edge(name, alias.name, inner, child.lineno))
                elif isinstance(child, ast.ImportFrom):
                    if child.level:
                        base = package[: len(package) - child.level + 1]
                        target = ".".join(base + ([child.module] if child.module else []))
                    else:
                        target = child.module or ""
                    if target.split(".")[0] == "modelport":
                        for alias in child.names:
                            sub = f"{target}.{alias.name}"
                            found.append(Edge(name, sub if sub in known else target, inner, child.lineno))
                walk(child, inner)

        walk(ast.parse(path.read_text(), str(path)), False)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
