"""Load and validate agent definitions: a folder with ``agent.json`` or ``agent.py``, or a file.

``agent.json`` is Hive's export format in any of its historical shapes (converted by
:mod:`hive_actors.graph.hive_format`); ``agent.py`` defines hive_actors objects at module
level (``goal``, ``nodes``, ``edges`` and optional graph settings). An optional ``tools.py``
beside either provides ``@tool`` functions. Modules of an agent folder are imported as a
private package, so they import each other relatively (``from .tools import double``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from hive_actors.errors import AgentDefinitionError, Problem
from hive_actors.graph import hive_format
from hive_actors.graph.export import default_entry_point, definition_to_json
from hive_actors.graph.identity import IdentityMap
from hive_actors.graph.spec import EdgeSpec, Goal, GraphSpec, NodeSpec
from hive_actors.graph.validation import Paths, build_record, check_graph, check_value, join
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.tools.hive_contract import hive_registry
from hive_actors.tools.registry import ToolRegistry

__all__ = ["AgentDefinition", "definition_to_json", "function_resolver", "load_agent",
           "resolve_function", "validate_agent"]

_BOM = b"\xef\xbb\xbf"


@attrs.frozen
class AgentDefinition:
    """A loaded agent. Equality compares what the agent is (graph, goal, entry points,
    descriptive data), not where it was read from or its live tools."""

    path: Path = attrs.field(eq=False)  # the agent folder (a bare file's parent)
    name: str
    graph: GraphSpec
    goal: Goal
    entry_points: tuple[EntryPointSpec, ...]  # never empty
    tools: ToolRegistry = attrs.field(eq=False, repr=False)
    metadata: dict[str, Any] = attrs.field(factory=dict)
    agent_info: dict[str, Any] = attrs.field(factory=dict)  # Hive's `agent` block
    required_tools: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = attrs.field(default=(), eq=False)
    source: Path | None = attrs.field(default=None, eq=False)  # the file read
    extra: dict[str, Any] = attrs.field(factory=dict)  # unknown top-level keys, kept


def load_agent(path: str | Path) -> AgentDefinition:
    """The agent at ``path`` (folder, ``.json`` or ``.py`` file), validated.

    Raises AgentDefinitionError listing every error; warnings are in ``.warnings``.
    """
    definition, problems = _load(Path(path))
    errors = [p for p in problems if p.severity == "error"]
    if errors or definition is None:
        raise AgentDefinitionError(errors or [Problem(str(path), "", "cannot be loaded")])
    _origins.set(definition.graph, (definition.path, str(definition.source or definition.path)))
    return attrs.evolve(definition, warnings=tuple(problems))


def validate_agent(path: str | Path) -> list[Problem]:
    """Every error and warning of the agent at ``path``; never raises for bad content."""
    return _load(Path(path))[1]


def resolve_function(definition: AgentDefinition, ref: str) -> Any:
    """The callable a function node names: ``module:attr`` from a module of the agent folder
    first, then sys.path; a bare name (as Hive's exports write them) from the folder's
    ``tools.py``.

    Raises AgentDefinitionError when the reference is malformed, the module or attribute is
    missing, the module fails to import, or the attribute is not callable.
    """
    return _resolve_in(definition.path, str(definition.source or definition.path), ref)


def function_resolver(graph: GraphSpec) -> Callable[[str], Any] | None:
    """For a graph `load_agent` returned: ``ref -> callable`` resolving against its agent
    folder (None for a graph built in code). Bare names it cannot find give None, so the
    caller may still look among registered tools; anything else raises AgentDefinitionError."""
    origin = _origins.get(graph)
    if origin is None:
        return None
    folder, file = origin

    def resolve(ref: str) -> Any:
        if ":" not in ref:
            try:
                return _resolve_in(folder, file, ref)
            except AgentDefinitionError:
                return None
        return _resolve_in(folder, file, ref)

    return resolve


# A loaded graph -> (its agent folder, the file read): what resolving its functions needs, kept
# beside the graph rather than in it (a GraphSpec is plain data that goes to JSON).
_origins: IdentityMap[GraphSpec, tuple[Path, str]] = IdentityMap()


def _resolve_in(folder: Path, file: str, ref: str) -> Any:
    module_name, sep, attr = ref.partition(":")
    if not sep and ref and "." not in ref:  # a bare name: the folder's tools.py
        if not (folder / "tools.py").is_file():
            raise AgentDefinitionError(
                f"function {ref!r}: a bare name is looked up in the agent folder's tools.py, "
                f"and {folder} has none (or name it 'module:attr')", file)
        module_name, sep, attr = "tools", ":", ref
    elif not sep:  # "package.module.attr"
        module_name, sep, attr = ref.rpartition(".")
    if not (sep and module_name and attr):
        raise AgentDefinitionError(f"function reference {ref!r} must look like 'module:attr'", file)
    rel = Path(*module_name.split("."))
    local = (folder / rel).with_suffix(".py").is_file() or (folder / rel / "__init__.py").is_file()
    full = f"{_package(folder, fresh=False)}.{module_name}" if local else module_name
    try:
        obj: Any = importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name not in (full, module_name):
            raise AgentDefinitionError(f"function {ref!r}: importing {module_name!r} failed: {exc}", file) from exc
        raise AgentDefinitionError(
            f"function {ref!r}: no module {module_name!r} in the agent folder {folder} or on sys.path",
            file) from exc
    except Exception as exc:
        raise AgentDefinitionError(f"function {ref!r}: importing {module_name!r} failed: "
                                   f"{type(exc).__name__}: {exc}", file) from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AgentDefinitionError(f"function {ref!r}: module {module_name!r} has no attribute "
                                       f"{attr!r}", file)
        obj = getattr(obj, part)
    if not callable(obj):
        raise AgentDefinitionError(f"function {ref!r} is not callable ({type(obj).__name__})", file)
    return obj


# ---------------------------------------------------------------- finding the definition


def _load(path: Path) -> tuple[AgentDefinition | None, list[Problem]]:
    if path.is_dir():
        if (path / "agent.py").is_file():
            return _load_py(path, path / "agent.py")
        if (path / "agent.json").is_file():
            return _load_json(path, path / "agent.json", with_tools=True)
        return None, [Problem(str(path), "", "folder has neither agent.json nor agent.py")]
    if not path.exists():
        return None, [Problem(str(path), "", "no such file or folder")]
    if path.suffix == ".py":
        return _load_py(path.parent, path)
    return _load_json(path.parent, path, with_tools=path.name == "agent.json")


def _package(folder: Path, *, fresh: bool) -> str:
    """Name of the private package holding ``folder``'s modules; ``fresh`` drops old imports."""
    name = "_hive_agent_" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    if fresh:
        for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[mod]
    if name not in sys.modules:
        pkg = types.ModuleType(name, f"agent folder {folder}")
        pkg.__path__ = [str(folder)]
        pkg.__package__ = name
        sys.modules[name] = pkg
        importlib.invalidate_caches()
    return name


def _import(folder: Path, stem: str, file: str) -> tuple[Any, list[Problem]]:
    try:
        return importlib.import_module(f"{_package(folder, fresh=False)}.{stem}"), []
    except SyntaxError as exc:
        where = f"line {exc.lineno}" if exc.lineno else ""
        return None, [Problem(file, where, f"syntax error: {exc.msg}")]
    except Exception as exc:  # noqa: BLE001 - user code may raise anything on import
        return None, [Problem(file, "", f"importing failed: {type(exc).__name__}: {exc}")]


def _load_tools(folder: Path) -> tuple[ToolRegistry, list[Problem]]:
    """A ToolRegistry of the folder's ``tools.py`` ``@tool`` functions (and ``tool_executor``)."""
    if not ((folder / "tools.py").is_file() or (folder / "tools" / "__init__.py").is_file()):
        return ToolRegistry(), []
    module, problems = _import(folder, "tools", str(folder / "tools.py"))
    if module is None:
        return ToolRegistry(), problems
    return hive_registry(module), problems


def _read_json(file: Path, label: str) -> tuple[Any, list[Problem]]:
    try:
        data = file.read_bytes()
    except OSError as exc:
        return None, [Problem(label, "", f"cannot read the file: {exc.strerror or exc}")]
    problems = []
    if data.startswith(_BOM):
        problems.append(Problem(label, "", "the file starts with a UTF-8 byte order mark "
                                           "(ignored; JSON files should not have one)", "warning"))
        data = data[len(_BOM):]
    if not data.strip():
        return None, [*problems, Problem(label, "", "the file is empty")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [*problems, Problem(label, "", f"not UTF-8 text: byte 0x{data[exc.start]:02x} "
                                                    f"at offset {exc.start}")]
    try:
        return json.loads(text), problems
    except json.JSONDecodeError as exc:
        return None, [*problems, Problem(label, "", f"not valid JSON: {exc.msg} at line "
                                                    f"{exc.lineno}, column {exc.colno}")]
    except RecursionError:
        return None, [*problems, Problem(label, "", "not valid JSON: nested too deeply")]


# ---------------------------------------------------------------- agent.json


def _load_json(folder: Path, file: Path, *, with_tools: bool) -> tuple[AgentDefinition | None, list[Problem]]:
    label = str(file)
    raw, problems = _read_json(file, label)
    if raw is None:
        if not any(p.severity == "error" for p in problems):  # the file says `null`
            problems = [*problems, Problem(label, "", "must be a JSON object (an agent "
                                                      "definition), got null")]
        return None, problems
    from hive_actors.graph.expressions import compile_expression

    default_name = folder.name if file.name == "agent.json" else file.stem
    norm = hive_format.normalise(raw, label, default_name, compile_expression)
    problems += norm.problems
    if norm.fatal:
        return None, problems
    tools, tool_problems = _load_tools(folder) if with_tools else (ToolRegistry(), [])
    problems += tool_problems

    def build(locs: list[hive_format.Located], cls: type) -> tuple[list[Any], list[str], list[Any]]:
        built: list[Any] = []
        paths: list[str] = []
        failed_ids: list[Any] = []  # the ids as written (maybe not strings)
        for loc in locs:
            record, errs = build_record(loc.data, cls, loc.path, label)
            problems.extend(errs)
            if record is None:
                failed_ids.append(loc.data.get("id"))
            else:
                built.append(record)
                paths.append(loc.path)
        return built, paths, failed_ids

    nodes, node_paths, failed_nodes = build(norm.nodes, NodeSpec)
    edges, edge_paths, _ = build(norm.edges, EdgeSpec)
    goal, errs = build_record(norm.goal.data, Goal, "goal", label)
    problems += errs
    graph, errs = build_record(norm.graph, GraphSpec, norm.graph_prefix, label)
    problems += errs
    eps, ep_paths = _json_entry_points(norm, graph, problems)
    if graph is None or goal is None:
        return None, problems
    graph = attrs.evolve(graph, nodes=tuple(nodes), edges=tuple(edges))
    if graph.goal_id != goal.id:
        problems.append(Problem(label, join(norm.graph_prefix, "goal_id"),
                                f"graph goal_id {graph.goal_id!r} differs from the goal's id {goal.id!r}",
                                "warning"))
    paths = Paths(norm.graph_prefix, node_paths, edge_paths, ep_paths)
    definition = AgentDefinition(
        path=folder, name=_name(norm.agent_info, default_name), graph=graph, goal=goal,
        entry_points=eps, tools=tools, metadata=norm.metadata, agent_info=norm.agent_info,
        required_tools=tuple(norm.required_tools if norm.required_tools is not None
                             else _tool_union(graph)),
        source=file, extra=norm.extra,
    )
    problems += _check(definition, paths, label, failed_nodes)
    return definition, problems


def _json_entry_points(
    norm: hive_format.Normalised, graph: GraphSpec | None, problems: list[Problem]
) -> tuple[tuple[EntryPointSpec, ...], dict[str, str]]:
    """Entry points: the graph's ``entry_points`` map, then ``async_entry_points`` (which
    replace a mapped one of the same id), else one ``default`` at the entry node."""
    if graph is None:
        return (), {}
    eps = {k: EntryPointSpec(id=k, entry_node=v, name=k) for k, v in graph.entry_points.items()}
    paths = {k: join(join(norm.graph_prefix, "entry_points"), k) for k in eps}
    known = hive_format.field_names(EntryPointSpec)
    for loc in norm.async_entry_points:
        for key in [k for k in loc.data if k not in known]:
            problems.append(Problem(norm.file, join(loc.path, key),
                                    f"unknown entry point key {key!r} (ignored)", "warning"))
            del loc.data[key]
        ep, errs = build_record(loc.data, EntryPointSpec, loc.path, norm.file)
        problems.extend(errs)
        if ep is None:
            continue
        if ep.id in eps and eps[ep.id].entry_node != ep.entry_node:
            problems.append(Problem(norm.file, join(loc.path, "entry_node"),
                                    f"entry point {ep.id!r} is mapped to {eps[ep.id].entry_node!r} "
                                    f"in entry_points but to {ep.entry_node!r} here"))
        eps[ep.id] = ep
        paths[ep.id] = loc.path
    return tuple(eps.values()) or (default_entry_point(graph),), paths


def _name(agent_info: dict[str, Any], default: str) -> str:
    name = agent_info.get("name")
    return name if isinstance(name, str) and name else default


def _tool_union(graph: GraphSpec) -> list[str]:
    return list(dict.fromkeys(t for n in graph.nodes for t in n.tools))


def _check(definition: AgentDefinition, paths: Paths, label: str,
           failed_nodes: Iterable[object] = ()) -> list[Problem]:
    from hive_actors.graph.expressions import compile_expression

    return check_graph(
        definition.graph, definition.entry_points, paths, label,
        tool_names=definition.tools.__contains__,
        resolve=lambda ref: resolve_function(definition, ref),
        compile_expression=compile_expression,
        also_known=[i for i in failed_nodes if isinstance(i, str)],
    )


# ---------------------------------------------------------------- agent.py


def _load_py(folder: Path, file: Path) -> tuple[AgentDefinition | None, list[Problem]]:
    label = str(file)
    _package(folder, fresh=True)
    tools, problems = _load_tools(folder)
    module, errs = _import(folder, file.stem, label)
    problems += errs
    if module is None:
        return None, problems
    parts = _module_parts(module, label, problems)
    if parts is None:
        return None, problems
    goal, nodes, edges, settings, eps = parts
    graph = GraphSpec(id=f"{folder.name}-graph", goal_id=goal.id, nodes=tuple(nodes),
                      edges=tuple(edges), **settings)
    ep_list, ep_paths = _py_entry_points(eps, graph, label, problems)
    metadata = getattr(module, "metadata", None)
    definition = AgentDefinition(
        path=folder, name=folder.name, graph=graph, goal=goal, entry_points=ep_list, tools=tools,
        metadata=metadata if isinstance(metadata, dict) else {},
        required_tools=tuple(_tool_union(graph)), source=file,
    )
    paths = Paths("", [f"nodes[{i}]" for i in range(len(nodes))],
                  [f"edges[{i}]" for i in range(len(edges))], ep_paths)
    problems += _check(definition, paths, label)
    return definition, problems


# Optional module attributes of agent.py -> their GraphSpec field.
_PY_SETTINGS = ("entry_node", "terminal_nodes", "pause_nodes", "identity_prompt",
                "conversation_mode", "loop_config", "max_steps")


_ModuleParts = tuple[Goal, list[NodeSpec], list[EdgeSpec], dict[str, Any], object]


def _module_parts(module: types.ModuleType, label: str,
                  problems: list[Problem]) -> _ModuleParts | None:
    """(goal, nodes, edges, graph settings, entry_points) of an agent module, or None."""
    ok = True

    def error(path: str, message: str) -> None:
        nonlocal ok
        ok = False
        problems.append(Problem(label, path, message))

    goal = getattr(module, "goal", None)
    if not isinstance(goal, Goal):
        error("goal", f"agent.py must define 'goal' as a hive_actors Goal, got {type(goal).__name__}")
    records: dict[str, list[Any]] = {}
    for key, cls in (("nodes", NodeSpec), ("edges", EdgeSpec)):
        items = getattr(module, key, None)
        if not isinstance(items, list | tuple):
            error(key, f"agent.py must define {key!r} as a list of {cls.__name__}, got {type(items).__name__}")
            items = []
        for i, item in enumerate(items):
            if not isinstance(item, cls):
                error(f"{key}[{i}]", f"expected a {cls.__name__}, got {type(item).__name__}")
        records[key] = [x for x in items if isinstance(x, cls)]
    hints = typing.get_type_hints(GraphSpec)
    settings: dict[str, Any] = {}
    for key in _PY_SETTINGS:
        if hasattr(module, key):
            value = getattr(module, key)
            if key in ("terminal_nodes", "pause_nodes") and isinstance(value, list | tuple):
                value = tuple(value)
            errs = check_value(value, hints[key], key, label)
            for p in errs:
                error(p.path, p.message)
            settings[key] = value
    if "entry_node" not in settings and records["nodes"]:
        settings["entry_node"] = records["nodes"][0].id
    settings.setdefault("entry_node", "")
    eps = getattr(module, "entry_points", None)
    if not ok or not isinstance(goal, Goal):  # a goal that is not a Goal was reported above
        return None
    return goal, records["nodes"], records["edges"], settings, eps


def _py_entry_points(
    eps: object, graph: GraphSpec, label: str, problems: list[Problem]
) -> tuple[tuple[EntryPointSpec, ...], dict[str, str]]:
    if eps is None or (isinstance(eps, dict | list | tuple) and not eps):
        return (default_entry_point(graph),), {}
    if isinstance(eps, dict):  # Hive style: {entry point id: node id}
        out: list[EntryPointSpec] = []
        paths: dict[str, str] = {}
        for k, v in eps.items():
            if isinstance(k, str) and isinstance(v, str):
                out.append(EntryPointSpec(id=k, entry_node=v, name=k))
                paths[k] = f"entry_points.{k}"
            else:
                problems.append(Problem(label, f"entry_points.{k}", "expected node id strings"))
        return tuple(out) or (default_entry_point(graph),), paths
    if isinstance(eps, list | tuple) and all(isinstance(e, EntryPointSpec) for e in eps):
        return tuple(eps), {e.id: f"entry_points[{i}]" for i, e in enumerate(eps)}
    problems.append(Problem(label, "entry_points",
                            "entry_points must be a dict {id: node id} or a list of EntryPointSpec"))
    return (default_entry_point(graph),), {}
