"""The package's import graph (type-only imports included) has no circles."""

from __future__ import annotations

import ast
import os

import leakguard

PACKAGE = os.path.dirname(os.path.abspath(leakguard.__file__))


def _graph() -> dict[str, set[str]]:
    mods: dict[str, str] = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = "leakguard." + os.path.relpath(path, PACKAGE)[:-3].replace(os.sep, ".")
                if rel.endswith(".__init__"):
                    rel = rel[:-len(".__init__")]
                mods[rel] = path
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition(".")[0]
            target = (base + ("." + node.module if node.module else "")) if node.level \
                else (node.module or "")
            for candidate in (target, *(f"{target}.{a.name}" for a in node.names)):
                # the package __init__ files only re-export: not a floor of their own
                if candidate in mods and candidate != mod and candidate not in (
                        "leakguard", "leakguard.integrations"):
                    graph[mod].add(candidate)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    graph = _graph()
    assert "leakguard._tracker" in graph["leakguard.integrations._base"]
    assert _cycles(graph) == []


def test_data_flows_integration_to_tracker_to_report() -> None:
    graph = _graph()
    assert "leakguard.integrations._base" not in graph["leakguard._tracker"]
    assert "leakguard._report" not in graph["leakguard._suppress"]
    assert "leakguard._report" not in graph["leakguard._tracker"]
