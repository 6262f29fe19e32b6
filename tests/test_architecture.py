"""The package's import structure: layers in a fixed order, no import cycles, no oversized modules.

Every ``import`` of a kanpde module anywhere in a module (top level or inside a function) is an edge. A module may
import modules of its own layer or of lower layers, never of a higher one, and the import graph has no cycle
(a package's ``__init__`` may import its own modules, but they may not import it back).

Adding a module: put its dotted name (or a package prefix ending in ".*") into the layer it belongs to in
:data:`LAYERS` (lowest first). A module that matches no entry fails :func:`test_every_module_has_a_layer`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "kanpde"

#: Layers, lowest first: a module may import only from its own layer and the layers before it.
#: ``name.*`` matches the package ``name`` and everything under it.
LAYERS: list[tuple[str, list[str]]] = [
    # config, one-line error reports; numpy/scipy reference solvers
    ("base", ["kanpde.version", "kanpde.errors", "kanpde.config", "kanpde.reference.*"]),
    ("geometry", ["kanpde.geometry.*"]),  # domains, sampling, distance functions; meshing for FEM references
    ("jet", ["kanpde.jet", "kanpde.taylor", "kanpde.univariate", "kanpde.splines", "kanpde.autodiff"]),
    ("nets", ["kanpde.nets.*"]),  # nets.library: snapping functions; nets.sparse: sparsity, pruning, snapping
    ("data", ["kanpde.data", "kanpde.unknown"]),  # measured data and unknown parameters (torch/numpy only)
    ("problem", ["kanpde.conditions", "kanpde.problem", "kanpde.problems.*"]),  # conditions, Problem, built-in problems
    ("field", ["kanpde.field"]),
    # the loss (modes, propagation: its grid terms); config checks; identified parameters
    ("loss", ["kanpde.modes", "kanpde.propagation", "kanpde.loss", "kanpde.checks", "kanpde.identify"]),
    ("train", ["kanpde.distributed", "kanpde.adaptive", "kanpde.balancing", "kanpde.train", "kanpde.discover"]),
    ("results", ["kanpde.results", "kanpde.plots"]),
    ("solver", ["kanpde.solver"]),
    ("tools", ["kanpde.compare", "kanpde.symbolic.*"]),  # built on complete runs
    ("cli", ["kanpde.cli", "kanpde.__main__", "kanpde"]),  # the command line and the package's public façade
]

MAX_LINES = 800


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str) -> str:
    """The module ``name`` refers to: itself if it is one, else its parent (``from pkg.mod import obj``)."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> set[str]:
    """The kanpde modules that ``module`` imports (``from kanpde import splines`` is kanpde.splines)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {_resolve(name) for name in names if name == "kanpde" or name.startswith("kanpde.")}
    found.discard(module)
    return found


def layer_of(module: str) -> int | None:
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if module == pattern or (pattern.endswith(".*") and (module == pattern[:-2]
                                                                 or module.startswith(pattern[:-1]))):
                return index
    return None


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_has_a_layer():
    missing = [module for module in MODULES if layer_of(module) is None]
    assert not missing, f"add these modules to LAYERS in tests/test_architecture.py: {missing}"


def test_no_upward_imports():
    upward = []
    for module, targets in GRAPH.items():
        for target in targets:
            low, high = layer_of(module), layer_of(target)
            if low is not None and high is not None and high > low:
                upward.append(f"{module} ({LAYERS[low][0]}) imports {target} ({LAYERS[high][0]})")
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a list of nodes (first == last), or None; depth-first search."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("source, expected", [
    ("from kanpde import splines", {"kanpde.splines"}),
    ("from kanpde.geometry import Box", {"kanpde.geometry"}),
    ("import kanpde.reference.store", {"kanpde.reference.store"}),
    ("from . import store", {"kanpde.reference.store"}),
    ("def f():\n    from kanpde.solver import solve", {"kanpde.solver"}),
])
def test_imports_are_read_as_written(source, expected, monkeypatch, tmp_path):
    path = tmp_path / "probe.py"
    path.write_text(source)
    monkeypatch.setitem(MODULES, "kanpde.reference.probe", path)
    assert imports("kanpde.reference.probe") == expected


def test_no_module_is_too_long():
    long = {module: n for module, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"
