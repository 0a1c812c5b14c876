"""The house's shape (DESIGN.md section 7), read from the source with ``ast``.

Layers import only downward, there are no import cycles, no module of the package imports
another inside a function (except the CLI, whose lazy imports keep ``--help`` fast), and
long functions are few.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bayes_sarcoma"

#: The layers, lowest first. A module may import from its own layer and the ones before it.
LAYERS = (
    "_version",
    "_defaults",
    "math",
    "data",
    "simulate",
    "inference",
    "model",
    "predict",
    "checks",
    "study",
    "report",
    "cli",
)
#: Functions over 80 lines (docstring included) allowed. DESIGN.md section 7 allows 5; the
#: package has none (18 before issue 12), and the ratchet keeps it so.
MAX_LONG_FUNCTIONS = 0
LONG = 80


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(), filename=str(path))
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(tree: ast.Module, *, top_level: bool) -> set[str]:
    found = set()
    nodes = tree.body if top_level else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bayes_sarcoma"):
            found.add(node.module)
            found.update(
                f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODS
            )
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("bayes_sarcoma"))
    return found


MODS = modules()


def test_the_layers_are_the_folders():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders == {name for name in LAYERS if not name.startswith("_")}


@pytest.mark.parametrize("module", sorted(m for m in MODS if m != "bayes_sarcoma"))
def test_imports_go_only_downward(module):
    rank = LAYERS.index(layer(module))
    for target in imports(MODS[module], top_level=False):
        if target == "bayes_sarcoma":
            if layer(module) == "cli":  # the top of the house may use the public API
                continue
            pytest.fail(f"{module} imports the top-level package (a cycle through __init__)")
        assert LAYERS.index(layer(target)) <= rank, f"{module} imports upward: {target}"


def test_no_import_cycles():
    graph = {
        m: {t for t in imports(tree, top_level=False) if t in MODS} for m, tree in MODS.items()
    }
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                pytest.fail("import cycle: " + " -> ".join([*stack, m, t]))
            if t not in state:
                visit(t, [*stack, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


@pytest.mark.parametrize("module", sorted(MODS))
def test_no_in_function_imports_of_the_package_outside_the_cli(module):
    if layer(module) == "cli":
        return
    tree = MODS[module]
    lazy = imports(tree, top_level=False) - imports(tree, top_level=True)
    type_checking = {
        n.module
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
        if isinstance(n, ast.ImportFrom)
    }
    assert not {m for m in lazy if m not in type_checking and m in MODS}, module


def long_functions() -> list[tuple[str, str, int]]:
    out = []
    for module, tree in MODS.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > LONG:
                    out.append((module, node.name, n))
    return sorted(out, key=lambda x: -x[2])


def test_few_long_functions():
    found = long_functions()
    assert len(found) <= MAX_LONG_FUNCTIONS, found
