"""The import graph of oncue's packages has no cycles, deferred imports included.

Every import statement counts, wherever it sits: at the top of a module, inside a function, or
under ``if TYPE_CHECKING:``. A cycle closed by a deferred import is still a cycle: the two
modules cannot be understood, tested or moved one without the other.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIRS: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"][
    "setuptools"
]["package-dir"]


def modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the mapped packages: dotted name -> (file, is a package's __init__)."""
    found: dict[str, tuple[Path, bool]] = {}
    for package, folder in PACKAGE_DIRS.items():
        root = REPO / folder
        for path in root.glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = (path, path.stem == "__init__")
    return found


def imported(name: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The dotted names an import statement in module ``name`` may load."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:
        parts = name.split(".") if is_package else name.split(".")[:-1]
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join([*parts, node.module] if node.module else parts)
    else:
        base = node.module or ""
    yield base
    yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in known.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                targets.update(imported(name, is_package, node))
        graph[name] = {target for target in targets if target in known and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_packages_import_without_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle_closed_by_a_deferred_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from .tree import System\n")
    node = next(each for each in ast.walk(tree) if isinstance(each, ast.ImportFrom))
    assert "oncue.actors.runtime.tree" in set(imported("oncue.actors.runtime.actor", False, node))


def test_every_package_module_is_seen() -> None:
    names = modules()
    expected = {"oncue.actors.engine.store", "oncue.actors.backends.base", "oncue.http.app"}
    assert expected <= set(names)


# The cores hold the engine's rules without I/O (docs/engine.md, "core and adapter"): they may
# import values (task, messages, errors, registry) but nothing that runs: trio, a backend, the
# actor runtime or the engine's actors. errors.py is the one module with trio in its closure,
# for trio.WouldBlock as the base of QueueFull and MailboxFull. Imports under TYPE_CHECKING do
# not run, so they do not count here (they do count for cycles, above).
TRIO_ALLOWED = {"oncue.actors.errors"}
RUNS = ("oncue.actors.runtime", "oncue.actors.engine", "oncue.actors.backends", "oncue.http")


def runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run: all but those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        else:
            yield from runtime_imports(node)


def runtime_closure(start: str) -> tuple[set[str], set[str]]:
    """The package modules ``start`` loads when imported, and which of them import trio."""
    known = modules()
    seen, todo, with_trio = {start}, [start], set()
    while todo:
        name = todo.pop()
        path, is_package = known[name]
        for node in runtime_imports(ast.parse(path.read_text(), str(path))):
            targets = set(imported(name, is_package, node))
            if any(target == "trio" or target.startswith("trio.") for target in targets):
                with_trio.add(name)
            for target in targets & set(known) - seen:
                seen.add(target)
                todo.append(target)
    return seen, with_trio


def test_the_cores_import_neither_trio_nor_anything_that_runs() -> None:
    cores = [name for name in modules() if name.startswith("oncue.actors.cores.")]
    assert len(cores) >= 10
    for core in cores:
        reached, with_trio = runtime_closure(core)
        assert not [name for name in reached if name.startswith(RUNS)], core
        assert with_trio <= TRIO_ALLOWED, (core, with_trio)
