"""The shape of the core package: no import cycle among ``ecspilot`` modules, no core module over
400 lines, no development tool inside the Lambda layer.

The import graph is read from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` anywhere in a module counts, at module level, inside functions and under
``if TYPE_CHECKING:`` alike, since the later restructure wants none of them to run in a circle.
Cycles are the strongly connected components of that graph (Tarjan).

Today's offenders are listed, each by name, in ``KNOWN_CYCLES`` and ``KNOWN_OVERSIZED``: the lists
only shrink. The check fails on a cycle or an oversized module that is not listed, and on a listed
one that is gone (delete its entry: that is the progress it records).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "layers" / "ecspilot" / "ecspilot"
DEV = Path(__file__).resolve().parents[2] / "dev" / "ecspilot_dev"
MAX_LINES = 400

# Each entry: the modules of one cycle (a strongly connected component) -> what ties it.
KNOWN_CYCLES: dict[frozenset[str], str] = {}

# Core modules over MAX_LINES lines -> how the later restructure splits them.
KNOWN_OVERSIZED: dict[str, str] = {}

# Packages the Lambda layer must never import (development and test tools).
DEV_ONLY = ("moto", "pytest", "ecspilot_dev", "tests", "bench")
# Where a core module may still reach for one lazily, and why.
DEV_IMPORT_ALLOWED: dict[tuple[str, str], str] = {
    (
        "ecspilot.interfaces.cli",
        "ecspilot_dev",
    ): "the `demo` verb: a lazy import, with a clear error when it is missing",
    ("ecspilot.interfaces.cli", "moto"): "the `demo` verb checks the demo's local AWS is there, the same way",
}

Graph = dict[str, set[str]]


def module_name(root: Path, path: Path) -> str:
    """``root/a/b.py`` -> ``<root name>.a.b``; a package's ``__init__.py`` is the package."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_of(root: Path) -> dict[str, Path]:
    return {module_name(root, p): p for p in sorted(root.rglob("*.py"))}


def imported_names(module: str, tree: ast.AST, is_package: bool) -> Iterable[str]:
    """Every dotted name a module imports (``from X import y`` yields ``X.y`` and ``X``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)


def import_graph(root: Path) -> Graph:
    """Edges between the modules under ``root`` (imports of anything else are left out)."""
    modules = modules_of(root)
    graph: Graph = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target in imported_names(name, tree, path.name == "__init__.py"):
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def external_imports(root: Path) -> dict[str, set[str]]:
    """Top-level packages each module under ``root`` imports from outside ``root``."""
    result: dict[str, set[str]] = {}
    for name, path in modules_of(root).items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        tops: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops.add(node.module.split(".")[0])
        result[name] = tops - {root.name}
    return result


def cycles(graph: Mapping[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module, or of one importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:  # Tarjan; the package is small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.add(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def oversized(root: Path, limit: int = MAX_LINES) -> dict[str, int]:
    counts = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules_of(root).items()
    }
    return {name: n for name, n in counts.items() if n > limit}


def _describe(component: frozenset[str], graph: Mapping[str, set[str]]) -> str:
    edges = sorted(f"{a} -> {b}" for a in component for b in graph[a] if b in component)
    return "{" + ", ".join(sorted(component)) + "}: " + "; ".join(edges)


# --- the checks on the real package -----------------------------------------------------------


def test_no_import_cycle_among_ecspilot_modules_beyond_the_known_ones() -> None:
    graph = import_graph(CORE)
    found = cycles(graph)
    new = [_describe(c, graph) for c in found - KNOWN_CYCLES.keys()]
    assert not new, "new import cycle(s); break them (a leaf module for shared types):\n" + "\n".join(new)


def test_every_known_cycle_still_exists_so_the_allowlist_only_shrinks() -> None:
    gone = [sorted(c) for c in KNOWN_CYCLES.keys() - cycles(import_graph(CORE))]
    assert not gone, (
        f"these cycles are broken or changed shape: remove or update their KNOWN_CYCLES entry: {gone}"
    )


def test_no_core_module_over_400_lines_beyond_the_known_ones() -> None:
    new = {m: n for m, n in oversized(CORE).items() if m not in KNOWN_OVERSIZED}
    assert not new, f"modules over {MAX_LINES} lines; split them by layer: {new}"


def test_every_known_oversized_module_is_still_oversized() -> None:
    big = oversized(CORE)
    fixed = sorted(m for m in KNOWN_OVERSIZED if m not in big)
    assert not fixed, f"now within {MAX_LINES} lines (or gone): remove from KNOWN_OVERSIZED: {fixed}"


def test_the_lambda_layer_imports_no_development_tool() -> None:
    offenders = sorted(
        (module, package)
        for module, packages in external_imports(CORE).items()
        for package in packages
        if package in DEV_ONLY and (module, package) not in DEV_IMPORT_ALLOWED
    )
    assert not offenders, f"development tools imported from the layer's package: {offenders}"


def test_every_allowed_development_import_is_still_made() -> None:
    imports = external_imports(CORE)
    gone = sorted(pair for pair in DEV_IMPORT_ALLOWED if pair[1] not in imports.get(pair[0], set()))
    assert not gone, f"no longer imported: remove from DEV_IMPORT_ALLOWED: {gone}"


def test_the_demo_shows_the_cli_without_importing_it() -> None:
    importers = sorted(
        name
        for name, path in modules_of(DEV).items()
        if "ecspilot.interfaces.cli"
        in imported_names(name, ast.parse(path.read_text(encoding="utf-8")), path.name == "__init__.py")
    )
    assert not importers, (
        f"the demo runs `ecspilot ...` in its own process, it does not import the CLI: {importers}"
    )


# --- the checker itself, on small packages that break each rule -------------------------------


def _package(tmp_path: Path, files: Mapping[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"a.py": "from pkg.b import x\n", "b.py": "from pkg.a import y\nx = 1\n"},
            {frozenset({"pkg.a", "pkg.b"})},
            id="module-level from-import",
        ),
        pytest.param(
            {"a.py": "import pkg.b\n", "b.py": "def f():\n    from pkg import a\n"},
            {frozenset({"pkg.a", "pkg.b"})},
            id="function-level import of a sibling module",
        ),
        pytest.param(
            {"a.py": "from . import b\n", "b.py": "from .c import z\n", "c.py": "from .a import q\n"},
            {frozenset({"pkg.a", "pkg.b", "pkg.c"})},
            id="relative imports, three modules",
        ),
        pytest.param(
            {
                "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n",
                "b.py": "from pkg.a import A\n",
            },
            {frozenset({"pkg.a", "pkg.b"})},
            id="an import under TYPE_CHECKING counts",
        ),
        pytest.param(
            {"sub/__init__.py": "from pkg.sub.x import f\n", "sub/x.py": "from ..sub import g\n"},
            {frozenset({"pkg.sub", "pkg.sub.x"})},
            id="a subpackage and its module",
        ),
        pytest.param(
            {"a.py": "from pkg.b import x\n", "b.py": "import json\nx = 1\n", "c.py": "import pkg.a\n"},
            set(),
            id="a chain is not a cycle",
        ),
    ],
)
def test_the_checker_finds_exactly_the_cycles_of_a_package(
    tmp_path: Path, files: dict[str, str], expected: set[frozenset[str]]
) -> None:
    assert cycles(import_graph(_package(tmp_path, files))) == expected


def test_the_checker_counts_lines_and_flags_only_modules_over_the_limit(tmp_path: Path) -> None:
    root = _package(tmp_path, {"big.py": "x = 1\n" * 401, "edge.py": "x = 1\n" * 400})
    assert oversized(root) == {"pkg.big": 401}


def test_the_checker_sees_a_development_tool_imported_inside_a_function(tmp_path: Path) -> None:
    root = _package(tmp_path, {"a.py": "def f():\n    from moto import mock_aws\n", "b.py": "import boto3\n"})
    assert external_imports(root) == {"pkg": set(), "pkg.a": {"moto"}, "pkg.b": {"boto3"}}


# --- the composition root stays at the edges ---------------------------------------------------

RUNTIME = "ecspilot.interfaces.runtime"
# Modules outside interfaces/, reconcile/ and */handler.py that still import the process Runtime
# -> what takes its place (the flow's core receives config, clients, history, settings values).
# The list only shrinks: it is emptied when the flows' handler modules are merged.
KNOWN_RUNTIME_IMPORTERS: dict[str, str] = {}


def may_import_runtime(module: str) -> bool:
    """The edges: the interfaces, reconcile (its parts take the runtime) and each flow's handler."""
    inside = module.partition(".")[2]  # the module's name inside its top-level package
    return inside.startswith(("interfaces.", "reconcile.")) or inside.rsplit(".", 1)[-1] == "handler"


def runtime_importers(root: Path) -> set[str]:
    """The modules under ``root`` that import ``<root>.interfaces.runtime`` (anywhere in the module:
    at top level, in a function, under TYPE_CHECKING) and are not edges."""
    runtime = f"{root.name}.interfaces.runtime"
    found = set()
    for name, path in modules_of(root).items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if not may_import_runtime(name) and runtime in imported_names(name, tree, path.name == "__init__.py"):
            found.add(name)
    return found


def test_only_the_edges_import_the_process_runtime() -> None:
    new = sorted(runtime_importers(CORE) - KNOWN_RUNTIME_IMPORTERS.keys())
    assert not new, (
        f"these modules import {RUNTIME}: give their core what it uses and move the entry point "
        f"to the flow's handler.py: {new}"
    )


def test_every_known_runtime_importer_still_imports_it_so_the_allowlist_only_shrinks() -> None:
    fixed = sorted(KNOWN_RUNTIME_IMPORTERS.keys() - runtime_importers(CORE))
    assert not fixed, f"no longer import {RUNTIME}: remove from KNOWN_RUNTIME_IMPORTERS: {fixed}"


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("ecspilot.interfaces.cli", True),
        ("ecspilot.reconcile.runbook", True),
        ("ecspilot.deploy.handler", True),
        ("ecspilot.jobs.handler", True),
        ("ecspilot.deploy.runbook", False),
        ("ecspilot.aws.history", False),
        ("ecspilot.domain.config", False),
        ("ecspilot.deploy.handlers", False),
        ("ecspilot.interfaces", False),
    ],
)
def test_only_interfaces_reconcile_and_handler_modules_may_import_the_runtime(
    module: str, allowed: bool
) -> None:
    assert may_import_runtime(module) is allowed


def test_the_checker_sees_every_way_of_importing_the_runtime(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "interfaces/__init__.py": "",
            "interfaces/runtime.py": "class Runtime: ...\n",
            "interfaces/cli.py": "from pkg.interfaces.runtime import Runtime\n",
            "flow/__init__.py": "",
            "flow/core.py": "from pkg.interfaces.runtime import Runtime\n",
            "flow/lazy.py": "def f():\n    from pkg.interfaces import runtime\n",
            "flow/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.interfaces.runtime\n",
            "flow/relative.py": "from ..interfaces.runtime import Runtime\n",
            "flow/pure.py": "from pkg.interfaces import cli\n",
            "flow/handler.py": "from pkg.interfaces.runtime import Runtime\n",
        },
    )
    assert runtime_importers(root) == {
        "pkg.flow.core",
        "pkg.flow.lazy",
        "pkg.flow.typed",
        "pkg.flow.relative",
    }
