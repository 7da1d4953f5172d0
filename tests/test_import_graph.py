"""lmdelta's packages import each other one way only (issue 12), so each layer can be read, tested
and replaced without the ones above it. The graph is read from the source with `ast`: top-level,
function-local and type-checking imports all count, because a lazy import hides a cycle rather
than removing it."""

from __future__ import annotations

import ast
import importlib
import itertools
from collections import defaultdict
from pathlib import Path

import lmdelta

ROOT = Path(lmdelta.__file__).parent
# Cycles that other items of issue 12 remove. Each edge here closes a cycle today; delete it when
# its cycle goes (the ratchet test below says when), and never add one for new code.
KNOWN_BACK_EDGES: dict[tuple[str, str], str] = {}
# The package root re-exports the Python API (lmdelta.compare, open_run) lazily (PEP 562 `__getattr__`):
# it imports lmdelta.api only when one of those names is first read, never at import time, so
# `lmdelta --help` stays instant and every module may still import the root for __version__. This edge
# is that facade, not a dependency of the root: no module below imports the API.
FACADE_EDGES = {("lmdelta", "api")}
# The lowest layers: what each may import from lmdelta (STYLE: stats is pure).
LEAVES = {
    "stats": set(),
    "errors": set(),
    "jsonvalues": set(),
    "records": {"errors", "jsonvalues"},
    "progress": set(),  # every layer reports progress through it
}


def _modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imported(module: str, path: Path) -> set[str]:
    """The lmdelta modules (or packages) a module imports anywhere in its body."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            # `from lmdelta import x` names a submodule when x is one, else something in lmdelta/__init__.
            names.update(f"{base}.{alias.name}" for alias in node.names)
            names.add(base)
    return {name for name in names if name == "lmdelta" or name.startswith("lmdelta.")}


def _unit(name: str, modules: dict[str, Path]) -> str | None:
    """The package, or top-level module, a dotted name belongs to (`lmdelta.backends.factory` →
    `backends`); None for a name inside a module (`lmdelta.errors.ConfigError`) when the module is
    counted on its own, and `lmdelta` for the package root."""
    parts = name.split(".")
    if len(parts) == 1:
        return "lmdelta"
    if f"lmdelta.{parts[1]}" not in modules:
        return "lmdelta" if len(parts) == 2 else None  # `from lmdelta import __version__`
    return parts[1]


def _graph() -> dict[str, dict[str, set[str]]]:
    """unit → imported unit → the modules that import it."""
    modules = _modules()
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for module, path in modules.items():
        source = _unit(module, modules)
        for name in _imported(module, path):
            target = _unit(name, modules)
            if target is not None and target != source:
                graph[source][target].add(module)
    return graph


def _cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    """One cycle of units (first unit repeated at the end), or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(unit: str) -> list[str] | None:
        state[unit] = "open"
        path.append(unit)
        for target in sorted(graph.get(unit, {})):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[unit] = "done"
        path.pop()
        return None

    for unit in sorted(graph):
        if unit not in state and (found := visit(unit)):
            return found
    return None


def _explain(cycle: list[str], graph: dict[str, dict[str, set[str]]]) -> str:
    return "; ".join(f"{a} → {b} ({', '.join(sorted(graph[a][b]))})" for a, b in itertools.pairwise(cycle))


def test_every_module_imports():
    for module in _modules():
        if module != "lmdelta.__main__":  # runs the CLI
            importlib.import_module(module)


def test_the_packages_import_each_other_one_way():
    graph = _graph()
    for source, target in [*KNOWN_BACK_EDGES, *FACADE_EDGES]:
        graph[source].pop(target, None)
    cycle = _cycle(graph)
    assert cycle is None, f"import cycle: {_explain(cycle, graph)}"


def test_the_facade_is_the_root_s_only_import_of_the_api():
    graph = _graph()
    assert set(graph["lmdelta"]) == {"api"}, "the root imports only the API, lazily"
    assert not [unit for unit, targets in graph.items() if "api" in targets and unit != "lmdelta"]


def test_known_back_edges_still_exist():
    """The list of cycles to remove shrinks as they go, so none comes back unnoticed."""
    graph = _graph()
    gone = [edge for edge in KNOWN_BACK_EDGES if edge[1] not in graph.get(edge[0], {})]
    assert not gone, f"{gone} no longer imported: remove from KNOWN_BACK_EDGES"


def test_backends_sit_below_llm():
    """The LLM layer runs local models through backends (local chat provider, served generator);
    backends reach served models only through what their caller hands in (protocols.ServedModels)."""
    graph = _graph()
    assert "llm" not in graph["backends"], _explain(["backends", "llm"], graph)


def test_the_lowest_layers_import_nothing_above_them():
    graph = _graph()
    for leaf, allowed in LEAVES.items():
        extra = set(graph.get(leaf, {})) - allowed
        assert not extra, f"{leaf} imports {sorted(extra)}: " + "; ".join(
            f"{target} ({', '.join(sorted(graph[leaf][target]))})" for target in sorted(extra)
        )


def test_the_graph_reader_sees_function_local_and_relative_imports(tmp_path):
    source = tmp_path / "lmdelta" / "pkg"
    source.mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "mod.py").write_text(
        "def f():\n    from lmdelta.other import x\n    from . import sibling\n    from ..third import y\n"
    )
    found = _imported("lmdelta.pkg.mod", source / "mod.py")
    assert {"lmdelta.other", "lmdelta.pkg", "lmdelta.pkg.sibling", "lmdelta.third"} <= found
    graph = {"a": {"b": {"m1"}}, "b": {"c": {"m2"}}, "c": {"a": {"m3"}}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b": {"m"}}, "b": {}}) is None


def _local_imports() -> list[tuple[str, int, str]]:
    """lmdelta imports inside a function body: (module path, line, the line's text)."""
    found = []
    for module, path in _modules().items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                names = (
                    [inner.module or ""]
                    if isinstance(inner, ast.ImportFrom)
                    else [alias.name for alias in inner.names]
                    if isinstance(inner, ast.Import)
                    else []
                )
                if any(name == "lmdelta" or name.startswith("lmdelta.") for name in names) or (
                    isinstance(inner, ast.ImportFrom) and inner.level
                ):
                    found.append((module, inner.lineno, lines[inner.lineno - 1]))
    return found


def test_lmdelta_modules_are_imported_at_the_top():
    """A function-local import hides the dependency graph (STYLE.md). The exceptions: the CLI's
    commands import what pulls pydantic, numpy or jinja2 when they run, so `lmdelta --help` stays
    instant, each such line saying so with a `# heavy:` comment; and the root's lazy facade
    (FACADE_EDGES), marked `# facade:`."""
    hidden = [
        f"{module}:{line}: {text.strip()}"
        for module, line, text in _local_imports()
        if not (module == "lmdelta.cli" and "# heavy:" in text) and not (module == "lmdelta" and "# facade:" in text)
    ]
    assert not hidden, "move to the module top:\n" + "\n".join(hidden)
