"""The package's layers (docs/architecture.md): imports point down, and never in a circle.

Every ``import`` in every module counts, wherever it stands: at the top, in a
function, or under ``if TYPE_CHECKING:``. A lazy import is still an arrow.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = "dspex_jupyter"
ROOT = pathlib.Path(__file__).resolve().parent.parent / PACKAGE

#: (module prefix, floor): the longest matching prefix decides a module's floor.
FLOORS = {
    "dspex_jupyter.errors": 1,
    "dspex_jupyter.variables": 1,
    "dspex_jupyter.scoring": 1,
    "dspex_jupyter.state": 2,
    "dspex_jupyter.program": 3,
    "dspex_jupyter.bridge": 4,
    "dspex_jupyter.context": 5,
    "dspex_jupyter.context_bridged": 5,
    "dspex_jupyter.context_lm": 5,
    "dspex_jupyter.api": 5,
    "dspex_jupyter.running": 6,
    "dspex_jupyter.tuning": 6,
    "dspex_jupyter.dsl": 7,
    "dspex_jupyter.jupyter": 7,
    # the top: thin public re-exports, and test support that nothing else imports
    "dspex_jupyter": 8,
    "dspex_jupyter.modules": 8,
    "dspex_jupyter.native": 8,
    "dspex_jupyter.testing": 8,
}


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if "_proto" in parts:  # generated stubs
            continue
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def floor(module: str) -> int:
    best = max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len)
    return FLOORS[best]


def _resolve(name: str) -> str | None:
    """The package module an import names (``import a.b.c`` where c is a name imports a.b)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from a import b``: the submodule a.b if there is one, else a name in a
            names = [
                f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in MODULES else prefix
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = _resolve(name)
                if target is not None and target != module:
                    targets.add(target)
    return targets


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_floor():
    assert all(floor(m) for m in MODULES)
    assert "dspex_jupyter.context" in MODULES and "dspex_jupyter.running" in MODULES


def test_imports_only_point_down():
    upward = sorted(
        f"{a} (floor {floor(a)}) imports {b} (floor {floor(b)})"
        for a, targets in GRAPH.items()
        for b in targets
        if floor(b) > floor(a)
    )
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one module are the circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
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
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circles():
    circles = _strongly_connected(GRAPH)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from ..context import Context", {"dspex_jupyter.context"}),
        ("def f():\n    from ..jupyter import traits_for", {"dspex_jupyter.jupyter"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import context", None),
    ],
)
def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path, monkeypatch, source, expected):
    """The checker itself: a lazy or TYPE_CHECKING import is found like any other."""
    fake = tmp_path / "probe.py"
    fake.write_text(source)
    monkeypatch.setitem(MODULES, "dspex_jupyter.state.probe", fake)
    found = imports_of("dspex_jupyter.state.probe")
    assert found == (expected or {"dspex_jupyter.context"})
    assert any(floor(t) > floor("dspex_jupyter.state.probe") for t in found)
