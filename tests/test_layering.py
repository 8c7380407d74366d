"""The package's layering, read from its import graph (ast): no cycles, nothing upward.

Layers, lowest first; a module may import its own layer and those below it:

0. base: errors, files, images, losses, augment, grid, device
1. data/, models/ (models are pure: no file I/O, no training config)
2. metrics/, config, label_rules
3. checkpoint, sampling (the library layers every verb and the UI build on)
4. train/
5. the verbs: generate, evaluate, export, label
6. cli, ui/, the package entry points

An import of a landgan module inside a function is allowed only with a comment on
its line or the line above naming the optional dependency or start-up cost behind it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "landgan"
LAYERS = [
    {"errors", "files", "images", "losses", "augment", "grid", "device", "sketch", "shipped"},
    {"data", "models"},
    {"metrics", "config", "config_flags", "label_rules"},
    {"checkpoint", "modelfile", "composer", "sampling"},
    {"train"},
    {"generate", "evaluate", "export", "label"},
    {"cli", "cli_args", "ui", "__main__", "__init__"},
]
JUSTIFIED = ("optional dependency", "start-up cost")


def _module_name(path: Path) -> str:
    parts = ("landgan",) + path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _imports(tree: ast.Module, modules: set[str]):
    """(imported landgan module, lineno, at module level?) for every landgan import."""
    top_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # "from landgan.x import y" may name a submodule y or an attribute of x.
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                for a in node.names
            ]
        for name in names:
            if name == "landgan" or name.startswith("landgan."):
                yield name, node.lineno, id(node) in top_level


@pytest.fixture(scope="module")
def graph():
    files = sorted(SRC.rglob("*.py"))
    modules = {_module_name(f) for f in files}
    edges, late = {}, []
    for f in files:
        src = f.read_text()
        lines, mod = src.splitlines(), _module_name(f)
        edges[mod] = set()
        for name, lineno, at_top in _imports(ast.parse(src), modules):
            edges[mod].add(name)
            if not at_top:
                around = " ".join(lines[max(0, lineno - 2) : lineno])
                late.append((mod, name, lineno, any(j in around for j in JUSTIFIED)))
    return edges, late


def test_every_module_has_a_layer(graph):
    edges, _ = graph
    for mod in edges:
        _layer(mod)


def test_nothing_imports_upward(graph):
    edges, _ = graph
    upward = [
        f"{a} (layer {_layer(a)}) -> {b} (layer {_layer(b)})"
        for a, targets in edges.items()
        for b in targets
        if _layer(b) > _layer(a)
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_cycles(graph):
    edges, _ = graph
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for mod in sorted(edges):
        if mod not in state:
            visit(mod, [mod])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_function_level_imports_are_justified(graph):
    _, late = graph
    bad = [f"{mod}:{line} imports {name}" for mod, name, line, ok in late if not ok]
    assert not bad, (
        "imports inside functions without a comment naming the optional "
        "dependency or start-up cost:\n" + "\n".join(bad)
    )


def test_the_checks_can_fail():
    """The graph reader sees an upward, late, unjustified import in a made-up module."""
    tree = ast.parse("def f():\n    from landgan.cli import main\n")
    assert list(_imports(tree, {"landgan.cli"})) == [("landgan.cli", 2, False)]
    assert _layer("landgan.cli") > _layer("landgan.models.dcgan")
