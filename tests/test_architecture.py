"""The package's shape: no import cycles, graph/ and storage/ below runtime/, no private access.

The import graph counts module-level, function-level and ``TYPE_CHECKING`` imports alike: a
cycle that only type hints close is still a design cycle. A private attribute (``x._name``, or
``getattr``/``setattr``/``hasattr``/``delattr`` with a literal private name) may be reached only
through ``self``, ``cls``, ``type(self)`` or ``super()``; a line that a reader would accept
otherwise says why with ``# allow-private: why``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hive_actors

PACKAGE = Path(hive_actors.__file__).parent
ROOT = PACKAGE.parent
# Public names of namedtuple-like APIs that happen to start with an underscore.
_PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make"}
_REFLECTION = {"getattr", "setattr", "hasattr", "delattr"}
_LOWER_LAYERS = ("hive_actors.graph", "hive_actors.storage", "hive_actors.events")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        found[_module_name(path)] = (path, ast.parse(path.read_text(), filename=str(path)))
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """Edges module -> hive_actors module it imports, wherever in the file the import is."""
    sources = _sources()
    graph: dict[str, set[str]] = {name: set() for name in sources}
    for name, (path, tree) in sources.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in sources else base)
            for target in targets:
                # ``import a.b.c`` binds a.b.c; the nearest module we know of is the edge.
                while target and target not in sources:
                    target = target.rpartition(".")[0]
                if target.startswith("hive_actors") and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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


def private_accesses() -> list[str]:
    """Every ``x._name`` not through self/cls/super, without an ``allow-private`` comment."""
    problems = []
    for path, tree in _sources().values():
        rel = path.relative_to(ROOT)
        problems += [f"{rel}:{where}" for where in _private_uses(tree, path.read_text())]
    return problems


def _private_uses(tree: ast.AST, text: str) -> list[str]:
    lines = text.splitlines()
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        attr = None
        owner: ast.AST | None = None
        if isinstance(node, ast.Attribute):
            attr, owner = node.attr, node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _REFLECTION
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            attr, owner = node.args[1].value, node.args[0]
        if attr is None or owner is None or not _is_private(attr) or _is_own(owner):
            continue
        line = lines[node.lineno - 1]
        if line.partition("# allow-private:")[2].strip():
            continue
        found.append((node.lineno, f"{node.lineno}: {ast.unparse(owner)}.{attr}"))
    return [text for _, text in sorted(found)]


def _is_private(attr: str) -> bool:
    return attr.startswith("_") and not attr.endswith("__") and attr not in _PUBLIC_UNDERSCORE


def _is_own(owner: ast.AST) -> bool:
    if isinstance(owner, ast.Name):
        return owner.id in ("self", "cls")
    if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name):
        if owner.func.id == "super":
            return True
        if owner.func.id == "type" and len(owner.args) == 1:
            return isinstance(owner.args[0], ast.Name) and owner.args[0].id == "self"
    return False


def test_import_graph_has_no_cycles():
    assert _cycles(import_graph()) == []


def test_graph_and_storage_never_import_runtime():
    graph = import_graph()
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.startswith(_LOWER_LAYERS)
        for target in targets
        if target.startswith("hive_actors.runtime")
    )
    assert wrong == []


def test_nobody_touches_another_objects_privates():
    assert private_accesses() == []


def test_checker_sees_a_cycle_and_a_private_access():
    """The checks above can fail: each finds the flaw it looks for in made-up input."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    text = (
        "bus._publish(x)\nself._ok()\nsuper()._ok()\ngetattr(run, '_x')\n"
        "p._replace(a=1)\nos._exit(0)  # allow-private: a forked child must not flush\n"
        "w._y  # allow-private:\n"
    )
    assert _private_uses(ast.parse(text), text) == ["1: bus._publish", "4: run._x", "7: w._y"]


def test_importing_the_executor_loads_no_runtime_module():
    code = (
        "import sys, hive_actors.graph.executor\n"
        "print(sorted(m for m in sys.modules if m.startswith('hive_actors.runtime')))"
    )
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "[]"
    assert "hive_actors.runtime" not in out.stderr


def test_seed_and_old_import_paths_still_work():
    from hive_actors import EntryPointSpec, EventType
    from hive_actors.graph.spec import EntryPointSpec as Moved
    from hive_actors.runtime.agent_runtime import AgentRuntime, create_agent_runtime  # noqa: F401
    from hive_actors.runtime.entry_point import EntryPointSpec as OldPath
    from hive_actors.runtime.events import AgentEvent, EventType as OldEventType  # noqa: F401
    from hive_actors.runtime.execution_stream import EntryPointSpec as SeedPath

    assert EntryPointSpec is Moved is OldPath is SeedPath
    assert EventType is OldEventType
