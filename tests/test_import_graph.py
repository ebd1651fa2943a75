"""The core's import graph has no circle, and nothing in the core climbs up to the CLI.

The graph is read from the source with :mod:`ast`, never by importing: a node per module of
``diffusionkit/``, an edge ``a -> b`` when ``a`` imports ``b`` at module level (statements run on
import: the module body, ``if``/``try``/``with`` blocks and class bodies). Importing a submodule
also runs its parent packages' ``__init__``, so ``a -> diffusionkit.x.y`` adds ``a -> diffusionkit.x``
(unless ``x`` holds ``a``: it is already importing);
``from pkg import name`` adds ``a -> pkg.name`` when ``name`` is a submodule. Imports inside
functions are lazy and not edges, and neither are ``if TYPE_CHECKING:`` blocks (never run). A
circle is a strongly connected component of more than one module (Tarjan 1972).

The graph with lazy imports counted too must have no circle either: the issue's circle ran
through them. Lazy imports that were only there to dodge a circle: none remain (``cli``'s
registry moved to :mod:`diffusionkit.commands`, which ``sweep``, ``testing.tiny_run`` and the
studio import at module level); those left keep a command's start quick (Lightning, Gradio,
pytest, Hydra's sweeper only where needed).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import diffusionkit

PACKAGE_DIR = Path(diffusionkit.__file__).parent
ROOT = "diffusionkit"
Graph = dict[str, set[str]]


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    """``diffusionkit/apps/vary.py`` -> ``diffusionkit.apps.vary``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement that runs when the module is imported (function bodies and
    ``if TYPE_CHECKING:`` blocks excluded)."""
    for node in body:
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from module_level_statements(node.orelse)
        elif isinstance(node, (ast.If, ast.Try, ast.TryStar, ast.With, ast.For, ast.While)):
            for field in ("body", "orelse", "finalbody"):
                yield from module_level_statements(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                yield from module_level_statements(handler.body)
        elif isinstance(node, ast.ClassDef):
            yield from module_level_statements(node.body)


def imported_modules(node: ast.stmt, importer: str, is_package: bool, modules: set[str]) -> Iterator[str]:
    """The modules one import statement asks for by name: ``import a.b`` -> ``a.b``; ``from pkg import
    x`` -> ``pkg.x`` where ``x`` is a submodule, else ``pkg`` (whose ``__init__`` defines ``x``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = importer.split(".")
            base = ".".join([*parts[: len(parts) - node.level + is_package], *([base] if base else [])])
        submodules = [f"{base}.{alias.name}" for alias in node.names]
        yield from (name for name in submodules if name in modules)
        if any(name not in modules for name in submodules):
            yield base


def with_parents(name: str) -> Iterator[str]:
    """``a.b.c`` -> ``a.b.c``, ``a.b``, ``a``: importing a submodule runs its packages first."""
    parts = name.split(".")
    yield from (".".join(parts[:end]) for end in range(len(parts), 0, -1))


def import_graph(package_dir: Path = PACKAGE_DIR, lazy: bool = False) -> Graph:
    """Module -> the modules of the same package it imports at module level (with ``lazy``: anywhere,
    functions too). A module's own packages are edges only where it names them itself (they are
    already importing when it runs)."""
    files = {module_name(path, package_dir): path for path in sorted(package_dir.rglob("*.py"))}
    graph: Graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        statements = ast.walk(tree) if lazy else module_level_statements(tree.body)
        asked = {target for node in statements
                 for target in imported_modules(node, name, path.name == "__init__.py", set(files))}
        graph[name] = {module for target in asked for module in with_parents(target)
                       if module in files and module != name
                       and (module == target or not name.startswith(f"{module}."))}
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_circle_finder_finds_a_circle_and_nothing_else() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": set(), "f": {"f"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    assert circles({"x": {"y"}, "y": {"x"}, "p": {"q"}, "q": {"p"}}) == [["p", "q"], ["x", "y"]]


def test_the_graph_reads_module_level_imports_only(tmp_path: Path) -> None:
    package = tmp_path / ROOT
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import leaf\n")
    (package / "sub" / "leaf.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                             "    from diffusionkit import top\n")
    (package / "top.py").write_text("import os\ntry:\n    from .sub.leaf import x\nexcept ImportError:\n    pass\n"
                                    "def later():\n    from diffusionkit import other\n")
    (package / "other.py").write_text("from diffusionkit.sub import leaf\n")
    graph = import_graph(package)
    assert import_graph(package, lazy=True)["diffusionkit.top"] == {"diffusionkit.sub.leaf", "diffusionkit.sub",
                                                                     "diffusionkit.other"}
    assert graph == {"diffusionkit": set(), "diffusionkit.sub": {"diffusionkit.sub.leaf"},
                     "diffusionkit.sub.leaf": set(), "diffusionkit.top": {"diffusionkit.sub.leaf", "diffusionkit.sub"},
                     "diffusionkit.other": {"diffusionkit.sub.leaf", "diffusionkit.sub"}}
    assert circles(graph) == []
    (package / "sub" / "leaf.py").write_text("import diffusionkit.top\n")
    assert circles(import_graph(package)) == [["diffusionkit.sub", "diffusionkit.sub.leaf", "diffusionkit.top"]]


def test_the_core_has_no_import_circle() -> None:
    graph = import_graph()
    assert len(graph) > 50, "the graph should hold every module of diffusionkit/"
    found = circles(graph)
    assert found == [], f"import circles among modules of diffusionkit/: {found}"


def test_not_even_lazy_imports_close_a_circle() -> None:
    """The issue's 7-module circle (cli -> sweep/plugins_cmd -> testing -> tiny_run -> cli) ran
    through imports inside functions: a lazy import may keep a start quick, not hide a circle."""
    found = circles(import_graph(lazy=True))
    assert found == [], f"import circles through lazy imports: {found}"


def test_only_the_entry_point_imports_the_cli() -> None:
    importers = sorted(name for name, imports in import_graph(lazy=True).items() if f"{ROOT}.cli" in imports)
    assert importers in ([], [f"{ROOT}.__main__"]), f"{importers} import the CLI; import diffusionkit.commands instead"
