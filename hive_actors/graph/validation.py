"""Checks on agent definitions: JSON shapes of records, then the graph as a whole.

Every check returns a list of :class:`Problem` instead of raising, so a caller can report
every problem of a file at once. Paths are JSON paths in the file the user wrote
(``graph.edges[3].target``), so the record builders take the path of each dict they build.
"""

from __future__ import annotations

import difflib
import enum
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import cattrs
from cattrs.v import format_exception

from hive_actors.errors import AgentDefinitionError, Problem
from hive_actors.graph.spec import (
    LEGACY_NODE_TYPES,
    NODE_TYPES,
    EdgeCondition,
    EdgeSpec,
    EntryPointSpec,
    GraphIndex,
    GraphSpec,
)
from hive_actors.serde import converter

CONVERSATION_MODES = ("continuous", "isolated")


def join(path: str, key: str | int) -> str:
    """``path`` extended by a key (``a.b``) or an index (``a[3]``)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


# ---------------------------------------------------------------- JSON shapes of records


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        return f"a list of {_plural(args[0])}"
    if origin is dict:
        return "an object"
    if origin in (typing.Union, types.UnionType):
        inner = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(inner) + " or null"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, "an object"
    )


def _plural(tp: Any) -> str:
    return {str: "strings", int: "integers", float: "numbers", bool: "booleans"}.get(tp, "objects")


def _kind(value: Any) -> str:
    """How a JSON value reads in a message: its JSON type and a short excerpt."""
    if value is None:
        return "null"
    name = {bool: "boolean", int: "number", float: "number", str: "string", list: "list",
            dict: "object", tuple: "list"}.get(type(value), type(value).__name__)
    text = json.dumps(value, ensure_ascii=False, default=str)
    return f"{name} {text if len(text) <= 40 else text[:37] + '...'}"


def _type_ok(value: Any, tp: Any) -> bool:
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return True


def check_value(value: Any, tp: Any, path: str, file: str) -> list[Problem]:
    """Problems of a JSON ``value`` that should hold type ``tp`` (a field type of our records)."""
    if tp is Any:
        return []
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = [Problem(file, path, f"expected {_describe(tp)}, got {_kind(value)}")]
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return [] if type(None) in args else bad
        inner = [a for a in args if a is not type(None)]
        return check_value(value, inner[0], path, file) if len(inner) == 1 else []
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return bad
        return [p for i, v in enumerate(value) for p in check_value(v, args[0], join(path, i), file)]
    if origin is dict:
        if not isinstance(value, dict):
            return bad
        return [p for k, v in value.items() for p in check_value(v, args[1], join(path, k), file)]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [] if value in {m.value for m in tp} else bad
    if attrs.has(tp):
        return check_record(value, tp, path, file) if isinstance(value, dict) else bad
    return [] if _type_ok(value, tp) else bad


def check_record(data: Mapping[str, Any], cls: type, path: str, file: str) -> list[Problem]:
    """Problems of ``data`` as the fields of attrs class ``cls``: missing required keys,
    unknown keys, values of the wrong JSON type (strings where lists belong, and so on)."""
    hints = typing.get_type_hints(cls)
    problems: list[Problem] = []
    known = set()
    for f in attrs.fields(cls):
        if not f.init:
            continue
        known.add(f.alias)
        if f.alias not in data:
            if f.default is attrs.NOTHING:
                problems.append(Problem(file, join(path, f.alias), f"missing required key {f.alias!r}"))
            continue
        problems += check_value(data[f.alias], hints[f.name], join(path, f.alias), file)
    problems += [Problem(file, join(path, k), f"unknown key {k!r}") for k in data if k not in known]
    return problems


def _format(exc: BaseException, tp: type | None) -> str:
    message = format_exception(exc, tp)
    return f"{message}: {exc}" if message == "invalid value" else message


def build_record(data: Mapping[str, Any], cls: type, path: str, file: str) -> tuple[Any, list[Problem]]:
    """``cls`` built from ``data`` with the shared converter, or None and the problems found."""
    problems = check_record(data, cls, path, file)
    if problems:
        return None, problems
    try:
        return converter.structure(dict(data), cls), []
    except cattrs.BaseValidationError as exc:
        out = []
        for line in cattrs.transform_error(exc, path=path or "$", format_exception=_format):
            message, _, where = line.rpartition(" @ ")
            out.append(Problem(file, where, message or line))
        return None, out
    except (ValueError, TypeError) as exc:  # attrs validators (e.g. EntryPointSpec.trigger_type)
        return None, [Problem(file, path, str(exc))]


# ---------------------------------------------------------------- the graph as a whole


@attrs.frozen
class Paths:
    """Where each part of a graph came from in the user's file, for messages."""

    graph: str  # prefix of graph-level keys: "graph" (export), "" (flat file, agent.py)
    nodes: Sequence[str]
    edges: Sequence[str]
    entry_points: Mapping[str, str]  # entry point id -> path

    def key(self, name: str) -> str:
        return join(self.graph, name)


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_graph(
    graph: GraphSpec,
    entry_points: Sequence[EntryPointSpec],
    paths: Paths,
    file: str,
    *,
    tool_names: Callable[[str], bool] | None = None,
    resolve: Callable[[str], Any] | None = None,
    compile_expression: Callable[[str], Any] | None = None,
    also_known: Iterable[str] = (),
) -> list[Problem]:
    """Every problem of a built graph: references, ids, types, expressions, reachability.

    ``tool_names(name)`` says whether a tool is provided (unknown tools are warnings);
    ``resolve(ref)`` resolves a function node's ``module:attr`` (failure is a warning: the
    callable may be registered by name at run time); ``compile_expression`` defaults to
    :func:`hive_actors.graph.expressions.compile_expression`. ``also_known`` names nodes
    whose records could not be built (already reported), so references to them are not.
    """
    if compile_expression is None:
        from hive_actors.graph.expressions import compile_expression as default_compile

        compile_expression = default_compile
    out: list[Problem] = []

    def error(path: str, message: str) -> None:
        out.append(Problem(file, path, message))

    def warn(path: str, message: str) -> None:
        out.append(Problem(file, path, message, "warning"))

    ids: dict[str, str] = {}
    for node, path in zip(graph.nodes, paths.nodes):
        if node.id in ids:
            error(join(path, "id"), f"duplicate node id {node.id!r} (first at {ids[node.id]})")
        else:
            ids[node.id] = path
    if not graph.nodes:
        error(paths.key("nodes"), "the graph has no nodes")

    also_known = set(also_known)

    def ref(node_id: str, path: str, what: str) -> bool:
        if node_id in ids or node_id in also_known:
            return True
        error(path, f"{what} names unknown node {node_id!r}{_hint(node_id, ids)}")
        return False

    _check_nodes(graph, paths, error, warn, ref, tool_names, resolve)
    _check_route_expressions(graph, paths, error, compile_expression)
    edge_ids: dict[str, str] = {}
    for edge, path in zip(graph.edges, paths.edges):
        if edge.id in edge_ids:
            error(join(path, "id"), f"duplicate edge id {edge.id!r} (first at {edge_ids[edge.id]})")
        edge_ids.setdefault(edge.id, path)
        ref(edge.source, join(path, "source"), f"edge {edge.id!r} source")
        ref(edge.target, join(path, "target"), f"edge {edge.id!r} target")
        _check_condition(edge, join(path, "condition_expr"), error, warn, compile_expression)

    if graph.entry_node:
        ref(graph.entry_node, paths.key("entry_node"), "entry_node")
    else:
        error(paths.key("entry_node"), "entry_node is empty")
    for key, node_ids in (("terminal_nodes", graph.terminal_nodes),
                          ("pause_nodes", graph.pause_nodes)):
        for i, node_id in enumerate(node_ids):
            ref(node_id, join(paths.key(key), i), key.removesuffix("s").replace("_", " "))
    seen_eps: set[str] = set()
    for ep in entry_points:
        where = paths.entry_points.get(ep.id, paths.key("entry_points"))
        if ep.id in seen_eps:
            error(where, f"duplicate entry point id {ep.id!r}")
        seen_eps.add(ep.id)
        ref(ep.entry_node, where, f"entry point {ep.id!r}")
    if graph.max_steps < 1:
        error(paths.key("max_steps"), f"max_steps must be at least 1, got {graph.max_steps}")
    if graph.conversation_mode not in CONVERSATION_MODES:
        error(paths.key("conversation_mode"),
              f"conversation_mode must be 'continuous' or 'isolated', got {graph.conversation_mode!r}")
    starts = [graph.entry_node, *(ep.entry_node for ep in entry_points)]
    for node_id in _unreachable(graph, starts):
        warn(ids[node_id], f"node {node_id!r} is unreachable from the entry node and entry points")
    return out


# error(path, message) / warn(path, message) record a problem; ref(node id, path, what) says
# whether a node id is known (reporting it if not).
_Report = Callable[[str, str], None]
_Ref = Callable[[str, str, str], bool]


def _check_nodes(graph: GraphSpec, paths: Paths, error: _Report, warn: _Report, ref: _Ref,
                 tool_names: Callable[[str], bool] | None,
                 resolve: Callable[[str], Any] | None) -> None:
    for node, path in zip(graph.nodes, paths.nodes):
        if node.node_type not in NODE_TYPES:
            error(join(path, "node_type"),
                  f"node {node.id!r} has unknown node_type {node.node_type!r}; expected one of "
                  f"{', '.join(NODE_TYPES)} (or legacy {', '.join(LEGACY_NODE_TYPES)})")
        if node.node_type == "function":
            if not node.function:
                error(join(path, "function"),
                      f"function node {node.id!r} has no 'function' (a 'module:attr' or registered name)")
            elif resolve is not None:
                try:
                    resolve(node.function)
                except AgentDefinitionError as exc:
                    warn(join(path, "function"), f"function node {node.id!r}: "
                         + "; ".join(p.message for p in exc.problems))
                except Exception as exc:  # noqa: BLE001 - any import failure is reported
                    warn(join(path, "function"), f"function node {node.id!r}: {exc}")
        for label, target in node.routes.items():
            ref(target, join(join(path, "routes"), label), f"route {label!r} of node {node.id!r}")
        for i, sub in enumerate(node.sub_agents):
            ref(sub, join(join(path, "sub_agents"), i), f"sub_agent of node {node.id!r}")
        if node.max_retries < 0:
            error(join(path, "max_retries"), f"node {node.id!r}: max_retries must be >= 0")
        if node.max_node_visits < 0:
            error(join(path, "max_node_visits"), f"node {node.id!r}: max_node_visits must be >= 0")
        stray = [k for k in node.nullable_output_keys if k not in node.output_keys]
        if stray:
            warn(join(path, "nullable_output_keys"),
                 f"node {node.id!r}: nullable keys {', '.join(map(repr, stray))} are not output keys")
        if tool_names is not None:
            missing = [t for t in node.tools if not tool_names(t)]
            if missing:
                warn(join(path, "tools"),
                     f"node {node.id!r} uses tools no registry provides: {', '.join(missing)} "
                     "(validate does not start MCP servers; supply them from one declared "
                     "in an mcp_servers.json beside agent.json, `--mcp-config FILE` on the "
                     "command line or AgentRunner.load(..., mcp_servers=FILE) in Python; "
                     "`hive-actors info PATH` lists what the declared servers offer)")


# Extra keys a router node reads its label expression from (see graph/nodes/router.py; not
# imported here so validation stays free of the node implementations).
ROUTE_EXPRESSION_KEYS = ("route_expr", "condition_expr", "expression", "router_expr")


def _check_route_expressions(graph: GraphSpec, paths: Paths, error: _Report,
                             compile_expression: Callable[[str], Any]) -> None:
    from hive_actors.errors import ExpressionError

    for node, path in zip(graph.nodes, paths.nodes):
        if node.node_type != "router":
            continue
        for key in ROUTE_EXPRESSION_KEYS:
            text = node.extra.get(key)
            if isinstance(text, str) and text.strip():
                try:
                    compile_expression(text)
                except ExpressionError as exc:
                    error(join(path, key), f"router {node.id!r}: bad {key} {text!r}: {exc}")


def _check_condition(edge: EdgeSpec, path: str, error: _Report, warn: _Report,
                     compile_expression: Callable[[str], Any]) -> None:
    expr = edge.condition_expr
    if edge.condition is EdgeCondition.CONDITIONAL and not (expr and expr.strip()):
        error(path, f"conditional edge {edge.id!r} has no condition_expr")
        return
    if not expr:
        return
    from hive_actors.errors import ExpressionError

    try:
        compile_expression(expr)
    except ExpressionError as exc:
        if edge.condition is EdgeCondition.CONDITIONAL:
            error(path, f"edge {edge.id!r}: bad condition_expr {expr!r}: {exc}")
            return
        warn(path, f"edge {edge.id!r}: condition_expr {expr!r} does not compile ({exc}); "
                   f"it is ignored because the condition is {edge.condition.value!r}")
        return
    if edge.condition is not EdgeCondition.CONDITIONAL:
        warn(path, f"edge {edge.id!r}: condition_expr is ignored because the condition is "
                   f"{edge.condition.value!r}, not 'conditional'")


def successors(graph: GraphSpec, node_id: str, index: GraphIndex | None = None) -> list[str]:
    """Nodes one step from ``node_id``: edge targets, router routes and sub-agents.
    ``index`` (the graph's GraphIndex) saves a scan of the graph per call."""
    if index is None:
        index = GraphIndex.of(graph)
    node = index.nodes.get(node_id)
    extra = [*node.routes.values(), *node.sub_agents] if node is not None else []
    return [e.target for e in index.outgoing.get(node_id, ())] + extra


def _unreachable(graph: GraphSpec, starts: Iterable[str]) -> list[str]:
    index = GraphIndex.of(graph)
    seen: set[str] = set()
    todo = [s for s in starts if s]
    while todo:
        node_id = todo.pop()
        if node_id not in seen:
            seen.add(node_id)
            todo += successors(graph, node_id, index)
    # Ids only once each, in declaration order; duplicates were reported already.
    return list(dict.fromkeys(n.id for n in graph.nodes if n.id not in seen))
