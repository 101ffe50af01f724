"""Every import inside the package goes down (or sideways) the layer order written in the README's "Layers"."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layer_order(readme: str) -> dict[str, int]:
    """``{unit: floor}`` from the numbered list under ``### Layers``."""
    section = readme.split("### Layers", 1)[1].split("\n#", 1)[0]
    return {unit: int(floor) for floor, units in re.findall(r"^(\d+)\. (.+)$", section, flags=re.M)
            for unit in units.split()}


def units(package: Path) -> set[str]:
    """The package's subpackages and top-level modules."""
    return {p.stem if p.is_file() else p.name for p in package.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").is_file())}


def upward_imports(package: Path, floors: dict[str, int]) -> list[str]:
    """``file:line imports unit`` for every import (at any depth, lazy ones too) of a unit on a higher floor."""
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        if parts == ("__init__",):
            continue
        here = parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                target = name.split(".")[1] if name.startswith(f"{package.name}.") else None
                if target is not None and floors[target] > floors[here]:
                    found.append(f"{path.relative_to(package.parent)}:{node.lineno} imports {name} "
                                 f"(floor {floors[target]} > {floors[here]})")
    return found


def test_every_unit_of_the_package_has_a_floor():
    floors = layer_order((ROOT / "README.md").read_text())
    assert units(ROOT / "videoreason") - set(floors) == set(), "add these to the README's Layers"
    assert set(floors) - units(ROOT / "videoreason") == set(), "the README's Layers names units that do not exist"


def test_no_module_imports_from_a_higher_floor():
    floors = layer_order((ROOT / "README.md").read_text())
    assert upward_imports(ROOT / "videoreason", floors) == []


def test_an_upward_import_is_found_even_inside_a_function(tmp_path):
    package = tmp_path / "videoreason"
    for unit in ("data", "eval"):
        (package / unit).mkdir(parents=True)
        (package / unit / "__init__.py").write_text("")
    (package / "data" / "verify.py").write_text("def f():\n    from videoreason.eval.sheet import Tile\n")
    (package / "eval" / "evaluate.py").write_text("import videoreason.data.verify\n")
    floors = layer_order("### Layers\n\n1. data\n2. eval\n")
    assert upward_imports(package, floors) == [
        "videoreason/data/verify.py:2 imports videoreason.eval.sheet (floor 2 > 1)"]


def import_graph(package: Path) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, every import at any depth (lazy ones too); a package's
    ``__init__`` is the package's own name, ``from pkg.mod import name`` an import of ``pkg.mod.name`` if that is a
    module, else of ``pkg.mod``."""
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                            for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = stack[stack.index(module):]
            del stack[stack.index(module):]
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycle_anywhere_in_the_package():
    assert import_cycles(import_graph(ROOT / "videoreason")) == []


def test_an_import_cycle_is_found_even_through_a_lazy_import(tmp_path):
    package = tmp_path / "videoreason"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text("def main():\n    from videoreason.trainer_cli import run\n")
    (package / "trainer_cli.py").write_text("from videoreason.cli import PlainHelp\n")
    (package / "atomic.py").write_text("import videoreason.cli\n")
    assert import_cycles(import_graph(package)) == [["videoreason.cli", "videoreason.trainer_cli"]]
