"""The layers and the import graph, read from the source (so that a later change cannot quietly undo them).

* ``knowledge/`` imports nothing from ``bot/``, ``finetune/`` or ``tui``: it is the bottom layer;
* ``bot/`` builds on ``knowledge/``; only its command line (``bot/cli/``) may start the top layer (``finetune``,
  ``tui``), as the program's edge;
* no import circles between files anywhere, counting imports inside functions too (imports under
  ``if TYPE_CHECKING:`` are for type checkers only and do not count).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("bot", "knowledge", "finetune")


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = [REPO / "tui.py"] + [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    return {_module_name(p): p for p in files if "__pycache__" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, this: str, is_package: bool) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = this.split(".")
                    parent = parent[: len(parent) - child.level + (1 if is_package else 0)]
                    base = ".".join(parent + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)  # `from pkg import module`
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a module's own package ``__init__`` chain excluded)."""
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = {t for t in _imports(tree, name, path.name == "__init__.py") if t in modules and t != name}
        graph[name] = targets
    return graph


def _layer(module: str) -> str:
    return module.split(".")[0]


def test_knowledge_imports_nothing_from_the_layers_above() -> None:
    bad = sorted(f"{m} -> {t}" for m, ts in import_graph().items() if _layer(m) == "knowledge"
                 for t in ts if _layer(t) != "knowledge")
    assert not bad, "knowledge/ must not import bot/, finetune/ or tui:\n" + "\n".join(bad)


def test_bot_reaches_the_top_layer_only_from_its_command_line() -> None:
    bad = sorted(f"{m} -> {t}" for m, ts in import_graph().items()
                 if _layer(m) == "bot" and not m.startswith("bot.cli")
                 for t in ts if _layer(t) in ("finetune", "tui"))
    assert not bad, "only bot/cli/ may import finetune or tui:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_no_import_circles_between_files() -> None:
    graph = import_graph()
    # A package's __init__ that re-exports its own modules is not a circle with them: importing the package
    # runs __init__, which imports the module, never the other way round at run time. Edges from a module to
    # its own package's __init__ are dropped for that reason.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    cycles = _cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_graph_reader_sees_lazy_imports() -> None:
    """A guard for the guard: imports inside functions count (the engine imports its components lazily)."""
    tree = ast.parse("def f():\n    from knowledge.base import KnowledgeBase\n")
    assert "knowledge.base" in _imports(tree, "bot.x", False)
