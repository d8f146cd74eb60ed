"""envknit's import graph follows docs/architecture.md: imports go down, never up or in a circle."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "envknit"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# The layers, lowest first; docs/architecture.md shows the same table highest first. A part is a
# top-level module or package of envknit (a package with all its submodules); "envknit" alone is
# the package's own __init__. A part may import only parts of lower layers (and itself).
LAYERS: dict[str, tuple[str, ...]] = {
    "foundation": ("envknit.errors", "envknit._version", "envknit._lane_pool",
                   "envknit._textfile", "envknit._wording", "envknit._where"),
    "utilities": (
        "envknit.names", "envknit._atomic", "envknit._yamlfile", "envknit.pythons",
        "envknit.nodes", "envknit._lane", "envknit._runner", "envknit._progress",
        "envknit._findconfig", "envknit._lockyaml", "envknit._lockread", "envknit._lockfast",
        "envknit._configcache", "envknit._filecache", "envknit._lockdata",
    ),
    "file models": ("envknit.config", "envknit.lock", "envknit._uv_output"),
    "uv processes": ("envknit._uvlock",),
    "uv": ("envknit._uv",),
    "store and locking": ("envknit.store", "envknit.locking"),
    "lock to store": ("envknit.wheelhouse",),
    "shared services": ("envknit._configured", "envknit._dists", "envknit.pylock",
                        "envknit._target"),
    "lock tables": ("envknit._lockcache",),
    "workers": ("envknit._worker",),
    "isolation": ("envknit.routing", "envknit._subinterp"),
    "interfaces": ("envknit", "envknit.cli", "envknit.ray"),
    "entry point": ("envknit.__main__",),
}

# Edges that break the rules today and are being removed; each says which rule and why it is
# here. Empty this as the fixes land: an entry whose edge no longer exists fails the test.
ALLOWED_FOR_NOW: dict[tuple[str, str], str] = {}

Edge = tuple[str, str]


def _modules() -> dict[str, Path]:
    """Every module of envknit by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """Dotted names an import statement loads; ``from pkg import name`` gives ``pkg.name``."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: resolve against the importer's package
        package = module.split(".")
        if path.name != "__init__.py":
            package.pop()
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    yield from (f"{base}.{alias.name}" for alias in node.names)


def import_edges() -> set[Edge]:
    """(importer, imported module) for every envknit-internal import, module or function level.

    A name that is not a module maps to the module defining it: ``envknit.errors.LockError``
    is an import of ``envknit.errors``.
    """
    modules = _modules()
    edges: set[Edge] = set()
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for name in _imported(module, path, node):
                target = name
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.add((module, target))
    return edges


def part_of(module: str) -> str:
    """The part (a LAYERS entry) that ``module`` belongs to."""
    if module == "envknit":
        return module
    best = ""
    for part in (p for parts in LAYERS.values() for p in parts if p != "envknit"):
        if (module == part or module.startswith(part + ".")) and len(part) > len(best):
            best = part
    assert best, (
        f"{module} belongs to no layer: add it (or its package) to LAYERS in "
        "tests/test_import_graph.py and to the table in docs/architecture.md"
    )
    return best


def layer_of(part: str) -> int:
    return next(i for i, parts in enumerate(LAYERS.values()) if part in parts)


def _private_owner(imported: str) -> str | None:
    """The package whose private module ``imported`` is (None when it is not private).

    ``envknit._x`` is private to envknit as a whole, so any envknit module may import it;
    ``envknit.pkg._x`` is private to ``envknit.pkg``.
    """
    parts = imported.split(".")
    owner = None
    for i in range(2, len(parts)):
        if parts[i].startswith("_") and not parts[i].startswith("__"):
            owner = ".".join(parts[:i])
    return owner


def violations(edges: set[Edge]) -> dict[Edge, str]:
    found: dict[Edge, str] = {}
    for importer, imported in sorted(edges):
        src, dst = part_of(importer), part_of(imported)
        owner = _private_owner(imported)
        if owner is not None and not (importer == owner or importer.startswith(owner + ".")):
            found[importer, imported] = f"private to {owner}"
        elif src != dst and layer_of(dst) >= layer_of(src):
            found[importer, imported] = (
                f"{src} ({list(LAYERS)[layer_of(src)]}) may not import {dst} "
                f"({list(LAYERS)[layer_of(dst)]})"
            )
    return found


def cycles(edges: set[Edge]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan's algorithm, iterative)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        part_of(module)


def test_no_upward_or_private_imports() -> None:
    found = violations(import_edges())
    unexpected = {edge: why for edge, why in found.items() if edge not in ALLOWED_FOR_NOW}
    assert not unexpected, "\n".join(f"{a} -> {b}: {why}" for (a, b), why in unexpected.items())


def test_allowlist_has_no_stale_entries() -> None:
    found = violations(import_edges())
    stale = sorted(set(ALLOWED_FOR_NOW) - set(found))
    assert not stale, f"these edges are gone or now legal; drop them from ALLOWED_FOR_NOW: {stale}"


def test_no_circles_between_modules_or_parts() -> None:
    edges = {edge for edge in import_edges() if edge not in ALLOWED_FOR_NOW}
    assert cycles(edges) == []
    parts = {(part_of(a), part_of(b)) for a, b in edges if part_of(a) != part_of(b)}
    assert cycles(parts) == []


def test_the_checks_catch_what_they_should() -> None:
    edges = {("envknit.errors", "envknit.store"), ("envknit.cli._run", "envknit.routing._router")}
    assert set(violations(edges)) == edges
    assert cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]
    assert _private_owner("envknit._subinterp._adapter") == "envknit._subinterp"
    assert _private_owner("envknit._uv") is None  # envknit-wide private: every part may use it
    assert _private_owner("envknit.store.layout") is None


def test_architecture_doc_mirrors_the_layers() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("<!-- layers -->")[1]
    rows = re.findall(r"^\| *\d+ +([^|]+?) *\| *([^|]+?) *\|", block, flags=re.MULTILINE)
    documented = {
        name: tuple(re.findall(r"`([\w.]+)`", parts)) for name, parts in reversed(rows)
    }
    assert list(documented.items()) == list(LAYERS.items())


def test_tests_import_helpers_from_helper_modules_not_conftest() -> None:
    offenders = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(name.rpartition(".")[2] == "conftest" for name in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"import from tests/_helpers.py instead: {offenders}"
