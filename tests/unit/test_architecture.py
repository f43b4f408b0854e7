"""The shape the package promises: layers, seams, no cycles, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fsmw"
MODULES = sorted(PACKAGE.rglob("*.py"))
WORLD = {"os", "time", "fcntl", "socket", "threading", "subprocess", "secrets", "shutil", "ctypes",
         "multiprocessing", "tempfile", "signal", "random"}


def dotted(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set:
    """Every module ``path`` imports (absolute names; relative imports resolved)."""
    package = dotted(path) if path.name == "__init__.py" else dotted(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def internal_graph() -> dict:
    names = {dotted(p) for p in MODULES}
    return {dotted(p): {m for m in imports(p) if m in names and m != dotted(p)} for p in MODULES}


def test_the_protocol_layer_imports_nothing_above_it():
    for path in PACKAGE.joinpath("_core").glob("*.py"):
        above = {m for m in imports(path) if m.startswith("fsmw.") and not m.startswith("fsmw._core")}
        assert not above, f"{path.name} imports {sorted(above)}"


def test_nothing_in_the_protocol_layer_acts_on_the_machine_but_the_seams():
    for path in PACKAGE.joinpath("_core").glob("*.py"):
        if path.name == "system.py":
            continue
        world = {m.split(".")[0] for m in imports(path)} & WORLD
        calls_open = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open"
                         for n in ast.walk(ast.parse(path.read_text())))
        assert not world and not calls_open, f"{path.name} uses {sorted(world)} directly"


def test_there_are_no_import_cycles():
    graph = internal_graph()
    state: dict = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", "import cycle: " + " -> ".join(trail + [node])
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if not nxt.startswith(node + "."):  # a package importing its own modules is no cycle
                visit(nxt, trail + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_is_small(path):
    assert len(path.read_text().splitlines()) <= 300


def test_master_and_worker_never_read_global_flags():
    for path in MODULES:  # only the edge reads them: the flags module and the fsmw command
        if path.name != "flags.py" and path.parent.name != "cli":
            assert "fsmw.flags" not in imports(path) and "gflags" not in imports(path), path
