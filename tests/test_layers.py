"""The package's layering, checked on the source: forbidden imports, cycles, private names.

Layers, bottom to top (docs/architecture.md has the picture): kernels -> core ->
warehouse -> engine -> the plugins (connectors, filters, generators; never each other) ->
trainer -> reports -> api -> ui (the local web UI) -> cli and demo. Imports under ``if TYPE_CHECKING:`` are not
imports at run time and are ignored; every other import counts, inside functions too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"dataengine": "dataengine", "connectors": "dataengine.connectors", "filters": "dataengine.filters",
           "generators": "dataengine.generators", "trainer": "dataengine.trainer", "kernels": "dataengine.kernels",
           "warehouse": "dataengine.warehouse"}

#: What each part may import besides itself.
ALLOWED = {
    "kernels": set(),
    "core": {"kernels"},
    "warehouse": {"core", "kernels"},
    "engine": {"core", "kernels", "warehouse"},
    "connectors": {"core", "kernels"},
    "filters": {"core", "kernels"},
    "generators": {"core", "kernels"},
    "trainer": {"core", "kernels", "warehouse"},
    "reports": {"core", "kernels", "warehouse", "connectors", "filters", "generators", "trainer"},
    "api": {"core", "kernels", "warehouse", "engine", "connectors", "filters", "generators", "trainer", "reports"},
    "ui": {"core", "api"},
    "cli": {"core", "api", "ui"},
    "demo": {"core", "api", "cli"},
    "root": {"api", "core"},
}


def part_of(module: str) -> str:
    """``dataengine.filters.langid`` -> ``filters``; ``dataengine.demo_generate`` -> ``demo``."""
    pieces = module.split(".")
    if len(pieces) == 1:
        return "root"
    second = pieces[1]
    if second.startswith("demo"):
        return "demo"
    if second not in ALLOWED:
        raise AssertionError(f"module {module} is in no layer: add its folder to ALLOWED (docs/architecture.md)")
    return second


def source_modules() -> dict[str, Path]:
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) for every run-time import of ours."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit_node(sub)
                continue
            visit_node(child)

    def visit_node(child):
        if isinstance(child, ast.Import):
            for alias in child.names:
                if alias.name.split(".")[0] in FOLDERS:
                    found.append((alias.name, [], child.lineno))
        elif isinstance(child, ast.ImportFrom):
            if child.level:
                base = package.split(".")
                base = base[: len(base) - (child.level - 1)]
                target = ".".join(base + ([child.module] if child.module else []))
            else:
                target = child.module or ""
            if target.split(".")[0] in FOLDERS:
                found.append((target, [a.name for a in child.names], child.lineno))
        visit(child)

    visit(tree)
    return found


MODULES = source_modules()
IMPORTS = {m: imports_of(m, p) for m, p in MODULES.items()}


def _resolve(target: str, names: list[str]) -> list[str]:
    """The modules an import statement loads (``from pkg import submodule`` loads the submodule)."""
    subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
    return subs if names and len(subs) == len(names) else [target, *subs]


def test_every_installed_name_is_under_dataengine():
    for name in MODULES:
        assert name == "dataengine" or name.startswith("dataengine."), name
        part_of(name)  # every module sits in a layer


def test_no_module_imports_a_layer_above_or_beside_it():
    bad = []
    for module, found in IMPORTS.items():
        mine = part_of(module)
        for target, names, line in found:
            if not target.startswith("dataengine"):
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target} (import dataengine.* instead)")
                continue
            # `from dataengine import api` imports the sub-module, not the package's own names
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            for dep in submodules or [target]:
                theirs = part_of(dep)
                if theirs != mine and theirs not in ALLOWED[mine]:
                    bad.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {mine} may not import {theirs} ({dep})")
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = defaultdict(set)
    for module, found in IMPORTS.items():
        for target, names, _ in found:
            for dep in _resolve(target, names):
                if dep in MODULES and dep != module:
                    # importing a package runs its __init__: an edge to the package too
                    graph[module].add(dep)
    cycles = _strongly_connected(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(sorted(c)) for c in cycles)


def _strongly_connected(graph) -> list[set[str]]:
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(component)

    for v in list(graph):
        if v not in index:
            connect(v)
    return result


def test_no_private_name_is_used_across_modules():
    bad = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FOLDERS:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}.{alias.name}")
                    if f"{node.module}.{alias.name}" in MODULES:
                        aliases[alias.asname or alias.name] = node.module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in FOLDERS and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, "private names used across modules:\n" + "\n".join(bad)


@pytest.mark.parametrize("case", ["upward", "sideways", "private", "cycle"])
def test_the_checks_catch_what_they_claim(case, tmp_path):
    """The checker itself fails on a planted violation of each kind."""
    pkg = tmp_path / "filters"
    pkg.mkdir()
    if case == "upward":
        (pkg / "x.py").write_text("from dataengine.api import open_warehouse\n")
        found = imports_of("dataengine.filters.x", pkg / "x.py")
        assert ("dataengine.api", ["open_warehouse"], 1) in found and "api" not in ALLOWED["filters"]
    elif case == "sideways":
        (pkg / "x.py").write_text("def f():\n    from dataengine.generators import chunking\n")
        found = imports_of("dataengine.filters.x", pkg / "x.py")
        assert found and part_of(found[0][0]) == "generators" and "generators" not in ALLOWED["filters"]
    elif case == "private":
        (pkg / "x.py").write_text("from dataengine.warehouse.lake import _quote\n")
        tree = ast.parse((pkg / "x.py").read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
        assert names == ["_quote"]
    else:
        assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
        assert _strongly_connected({"a": {"b"}, "b": set()}) == []
    (pkg / "y.py").write_text("if TYPE_CHECKING:\n    from dataengine.api import x\n")
    assert imports_of("dataengine.filters.y", pkg / "y.py") == []
