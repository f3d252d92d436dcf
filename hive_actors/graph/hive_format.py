"""Hive's ``agent.json`` shapes turned into one normalised form.

Hive exported agents in several shapes over time: the current export ``{agent, graph, goal,
metadata, required_tools}`` and partial variants, older ``{goal, graph}``, flat ``{goal,
nodes, edges}`` and a template manifest (flat, with ``entry_point`` and ``config``).
:func:`normalise` turns each into a :class:`Normalised` record of plain dicts that use our
field names, noting every problem on the way with its JSON path in the original file, and a
warning for every conversion that could change what the author meant. Legacy spellings
(``node_id``, ``edge_id``, ``from``/``to``, ``prompt``, ``type``, ``goal_id``, START/END
pseudo nodes, string success criteria, legacy node types) are converted quietly: their meaning
is not in doubt. Keys our records do not know go to ``extra``.
"""

from __future__ import annotations

import io
import re
import tokenize
import typing
from collections.abc import Callable
from typing import Any

import attrs

from hive_actors.errors import ExpressionError, Problem
from hive_actors.graph.spec import (
    LEGACY_NODE_TYPES,
    Constraint,
    EdgeCondition,
    EdgeSpec,
    Goal,
    GraphSpec,
    NodeSpec,
    SuccessCriterion,
)
from hive_actors.graph.validation import join


def field_names(cls: type) -> frozenset[str]:
    """Init keys of an attrs record, without its catch-all ``extra``."""
    return frozenset(f.alias for f in attrs.fields(cls) if f.init) - {"extra"}


def _non_nullable(cls: type) -> frozenset[str]:
    hints = typing.get_type_hints(cls)
    return frozenset(
        f.alias
        for f in attrs.fields(cls)
        if f.init and hints[f.name] is not Any and type(None) not in typing.get_args(hints[f.name])
    )


NODE_KEYS, EDGE_KEYS = field_names(NodeSpec), field_names(EdgeSpec)
GOAL_KEYS = field_names(Goal)
CRITERION_KEYS, CONSTRAINT_KEYS = field_names(SuccessCriterion), field_names(Constraint)
GRAPH_KEYS = field_names(GraphSpec) - {"nodes", "edges"}
TOP_KEYS = frozenset({"agent", "graph", "goal", "metadata", "required_tools"})
# Top-level keys of older shapes that describe the agent (Hive's later `agent` block).
AGENT_KEYS = frozenset({"id", "name", "version", "description", "author", "tags", "category"})
CONDITIONS = tuple(c.value for c in EdgeCondition)
# compile_expression(text) raises ExpressionError for text that is not a valid expression
CompileExpression = Callable[[str], Any]
PSEUDO_START, PSEUDO_END = "START", "END"
# Hive's NodeSpec.max_retries counts total attempts (0 and 1 both mean one attempt) and
# defaults to 3; our NodeSpec.max_retries counts retries after the first attempt. agent.json
# keeps Hive's meaning in both directions (read: attempts - 1; write: retries + 1), so one
# file means the same to Hive and to us.
HIVE_DEFAULT_ATTEMPTS = 3
# Node `type` spellings of old exports: type -> (node_type, client_facing)
_TYPE_ALIASES = {"llm": ("event_loop", False), "human": ("event_loop", True)}
# Operators of Hive authors' raw condition strings, same length as their Python spelling.
_OPERATOR_WORDS = {"AND": "and", "OR": "or", "NOT": "not", "null": "None"}


@attrs.define
class Located:
    """A normalised dict and its JSON path in the original file."""

    path: str
    data: dict[str, Any]


@attrs.define
class Normalised:
    file: str
    graph_prefix: str  # "graph" for wrapped shapes, "" for flat ones
    graph: dict[str, Any] = attrs.field(factory=dict)
    nodes: list[Located] = attrs.field(factory=list)
    edges: list[Located] = attrs.field(factory=list)
    goal: Located = attrs.field(factory=lambda: Located("goal", {}))
    async_entry_points: list[Located] = attrs.field(factory=list)
    agent_info: dict[str, Any] = attrs.field(factory=dict)
    metadata: dict[str, Any] = attrs.field(factory=dict)
    required_tools: list[str] | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)
    problems: list[Problem] = attrs.field(factory=list)
    fatal: bool = False  # not an agent definition at all: nothing else to check

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, path, message))

    def warn(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, path, message, "warning"))


def normalise(
    raw: Any, file: str, default_name: str, compile_expression: Callable[[str], Any]
) -> Normalised:
    """Any Hive export shape as a :class:`Normalised`; problems are in ``.problems``."""
    if not isinstance(raw, dict):
        out = Normalised(file, "graph", fatal=True)
        out.error("", f"the top level must be a JSON object, got {type(raw).__name__}")
        return out
    if "graph" in raw:
        out = Normalised(file, "graph")
        graph_raw = raw["graph"]
        if not isinstance(graph_raw, dict):
            out.error("graph", f"'graph' must be an object, got {type(graph_raw).__name__}")
            out.fatal = True
            return out
        top = {k: v for k, v in raw.items() if k != "graph"}
    elif "nodes" in raw or "edges" in raw:  # flat shape: graph keys at the top level
        out = Normalised(file, "")
        flat = GRAPH_KEYS - AGENT_KEYS | {"nodes", "edges", "async_entry_points"}
        graph_raw = {k: v for k, v in raw.items() if k in flat}
        top = {k: v for k, v in raw.items() if k not in flat}
    else:
        out = Normalised(file, "graph", fatal=True)
        out.error("", "no 'graph' object and no top-level 'nodes': not an agent definition")
        return out
    _top_level(out, top)
    name = out.agent_info.get("name") if isinstance(out.agent_info.get("name"), str) else None
    _graph(out, graph_raw, compile_expression)
    _goal(out, raw.get("goal"), name or default_name)
    graph = out.graph
    if not graph.get("goal_id"):
        graph["goal_id"] = out.goal.data.get("id", "")
    if "id" not in graph:
        graph["id"] = f"{_slug(name or default_name)}-graph"
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "agent"


def _top_level(out: Normalised, top: dict[str, Any]) -> None:
    has_agent = "agent" in top
    for key, value in top.items():
        if key == "goal":
            continue
        if key == "agent":
            if isinstance(value, dict):
                out.agent_info = dict(value)
            else:
                out.error("agent", f"'agent' must be an object, got {type(value).__name__}")
        elif key == "metadata":
            if isinstance(value, dict):
                out.metadata = dict(value)
            elif value is not None:
                out.error("metadata", f"'metadata' must be an object, got {type(value).__name__}")
        elif key == "required_tools":
            if isinstance(value, list) and all(isinstance(t, str) for t in value):
                out.required_tools = list(value)
            elif value is not None:
                out.error("required_tools", "'required_tools' must be a list of strings")
        elif key in AGENT_KEYS and not has_agent:
            out.agent_info[key] = value
        else:
            out.extra[key] = value


def _rename(d: dict[str, Any], old: str, new: str, path: str, out: Normalised) -> None:
    """Move legacy key ``old`` to ``new``; a disagreeing value under both is an error."""
    if old not in d:
        return
    value = d.pop(old)
    if d.get(new) is None:
        d[new] = value
    elif d[new] != value:
        out.error(join(path, old), f"{old!r} {value!r} disagrees with {new!r} {d[new]!r}")


def _split_extra(d: dict[str, Any], known: frozenset[str],
                 nullable_ok: frozenset[str]) -> dict[str, Any]:
    """``d`` keeps only known keys (nulls dropped where a field cannot be null); the rest
    goes to ``d["extra"]``."""
    extra = {k: d.pop(k) for k in list(d) if k not in known}
    for k in [k for k, v in d.items() if v is None and k in nullable_ok]:
        del d[k]
    if extra:
        d["extra"] = extra
    return d


def _graph(out: Normalised, raw: dict[str, Any], compile_expression: CompileExpression) -> None:
    prefix = out.graph_prefix
    nodes_raw = raw.get("nodes", [])
    if not isinstance(nodes_raw, list):
        out.error(join(prefix, "nodes"), f"'nodes' must be a list, got {type(nodes_raw).__name__}")
        nodes_raw = []
    edges_raw = raw.get("edges", [])
    if not isinstance(edges_raw, list):
        out.error(join(prefix, "edges"), f"'edges' must be a list, got {type(edges_raw).__name__}")
        edges_raw = []
    for i, node in enumerate(nodes_raw):
        loc = _node(out, node, join(join(prefix, "nodes"), i))
        if loc is not None:
            out.nodes.append(loc)
    node_ids = {n.data.get("id") for n in out.nodes}
    starts: list[str] = []
    ends: list[str] = []
    for i, edge in enumerate(edges_raw):
        loc = _edge(out, edge, join(join(prefix, "edges"), i), node_ids, starts, ends, compile_expression)
        if loc is not None:
            out.edges.append(loc)
    _unique_edge_ids(out)

    graph = {k: v for k, v in raw.items() if k not in ("nodes", "edges", "async_entry_points")}
    _split_extra(graph, GRAPH_KEYS, _non_nullable(GraphSpec))
    if not graph.get("entry_node"):
        graph["entry_node"] = _entry_node(out, starts)
    if "terminal_nodes" not in graph and ends:
        graph["terminal_nodes"] = list(dict.fromkeys(ends))
    mode = graph.get("conversation_mode")
    if isinstance(mode, str) and mode not in ("continuous", "isolated"):
        out.warn(join(prefix, "conversation_mode"),
                 f"conversation_mode {mode!r} read as 'isolated' (Hive runs every mode other "
                 "than 'continuous' as isolated)")
        graph["conversation_mode"] = "isolated"
    out.graph = graph
    eps = raw.get("async_entry_points")
    if isinstance(eps, list):
        for i, ep in enumerate(eps):
            path = join(join(prefix, "async_entry_points"), i)
            if not isinstance(ep, dict):
                out.error(path, f"an entry point must be an object, got {type(ep).__name__}")
                continue
            out.async_entry_points.append(Located(path, dict(ep)))
    elif eps is not None:
        out.error(join(prefix, "async_entry_points"), "'async_entry_points' must be a list")


def _entry_node(out: Normalised, starts: list[str]) -> str:
    """The entry node of a file without ``entry_node``: START edge, manifest, first node."""
    prefix = out.graph_prefix
    if starts:
        if len(set(starts)) > 1:
            out.warn(join(prefix, "edges"), f"several START edges; entry_node is {starts[0]!r}")
        return starts[0]
    manifest = out.extra.get("entry_point")
    manifest_node = manifest.get("node_id") if isinstance(manifest, dict) else None
    if isinstance(manifest_node, str):
        return manifest_node
    first = out.nodes[0].data.get("id") if out.nodes else None
    if isinstance(first, str):
        out.warn(join(prefix, "entry_node"), f"no entry_node; using the first node {first!r}")
        return first
    return ""


def _node(out: Normalised, raw: Any, path: str) -> Located | None:
    if not isinstance(raw, dict):
        out.error(path, f"a node must be an object, got {type(raw).__name__}")
        return None
    d = dict(raw)
    _rename(d, "node_id", "id", path, out)
    _rename(d, "prompt", "system_prompt", path, out)
    if d.get("node_type") is None and "type" in d:
        spelled = d.pop("type")
        node_type, facing = _TYPE_ALIASES.get(spelled, (spelled, False))
        d["node_type"] = node_type
        if node_type != spelled:
            d["legacy_type"] = spelled
        if facing:
            d["client_facing"] = True
    node_type = d.get("node_type")
    if isinstance(node_type, str) and node_type in LEGACY_NODE_TYPES:
        d["node_type"] = LEGACY_NODE_TYPES[node_type]
        d["legacy_type"] = node_type
        if node_type == "human_input":
            d["client_facing"] = True
    if isinstance(d.get("id"), str) and d.get("name") is None:
        d["name"] = d["id"]
    attempts = d.get("max_retries")
    if attempts is None:
        attempts = HIVE_DEFAULT_ATTEMPTS
    if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 0:
        d["max_retries"] = max(0, attempts - 1)
    return Located(path, _split_extra(d, NODE_KEYS, _non_nullable(NodeSpec)))


def _edge(out: Normalised, raw: object, path: str, node_ids: set[Any], starts: list[str],
          ends: list[str], compile_expression: CompileExpression) -> Located | None:
    if not isinstance(raw, dict):
        out.error(path, f"an edge must be an object, got {type(raw).__name__}")
        return None
    d = dict(raw)
    _rename(d, "edge_id", "id", path, out)
    _rename(d, "from", "source", path, out)
    _rename(d, "to", "target", path, out)
    # START / END pseudo nodes of old exports mark the entry node and terminal nodes.
    if d.get("source") == PSEUDO_START and PSEUDO_START not in node_ids:
        if isinstance(d.get("target"), str):
            starts.append(d["target"])
        return None
    if d.get("target") == PSEUDO_END and PSEUDO_END not in node_ids:
        if isinstance(d.get("source"), str):
            ends.append(d["source"])
        return None
    _condition(out, d, path, compile_expression)
    return Located(path, _split_extra(d, EDGE_KEYS, _non_nullable(EdgeSpec)))


def _condition(out: Normalised, d: dict[str, Any], path: str,
               compile_expression: CompileExpression) -> None:
    text = d.get("condition")
    if text is None:
        d.pop("condition", None)  # Hive's loader default, and ours: on_success
        return
    if not isinstance(text, str) or text in CONDITIONS:
        return  # wrong types are reported when the record is built
    where = join(path, "condition")
    names = ", ".join(CONDITIONS)
    if re.fullmatch(r"[A-Za-z_]\w*", text):
        out.error(where, f"unknown edge condition {text!r}; expected one of {names}")
        del d["condition"]  # reported once; the rest of the edge is still checked
        return
    expr, reason = _as_expression(text, compile_expression)
    if expr is None:
        out.error(where, f"condition {text!r} is neither one of {names} nor a valid "
                         f"expression: {reason}")
        del d["condition"]
    elif d.get("condition_expr"):
        out.error(where, f"condition {text!r} is an expression, but condition_expr is set too")
        del d["condition"]
    else:
        d["condition"], d["condition_expr"] = EdgeCondition.CONDITIONAL.value, expr
        out.warn(where, f"condition {text!r} is an expression, not a condition name; read as "
                        f"'conditional' with condition_expr {expr!r}")


def _as_expression(text: str, compile_expression: CompileExpression) -> tuple[str | None, str]:
    """``text`` (or its spelling with Python's and/or/not/None) if it compiles."""
    try:
        compile_expression(text)
        return text, ""
    except ExpressionError as exc:
        reason = str(exc)
    spelled = _python_operators(text)
    if spelled != text:
        try:
            compile_expression(spelled)
            return spelled, ""
        except ExpressionError:
            pass
    return None, reason


def _python_operators(text: str) -> str:
    """``text`` with the words AND, OR, NOT, null spelled as Python's (outside strings)."""
    lines = text.splitlines(keepends=True) or [""]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return text
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.string in _OPERATOR_WORDS:
            row, col = tok.start
            line = lines[row - 1]
            lines[row - 1] = line[:col] + _OPERATOR_WORDS[tok.string] + line[tok.end[1]:]
    return "".join(lines)


def _unique_edge_ids(out: Normalised) -> None:
    taken = {e.data["id"] for e in out.edges if isinstance(e.data.get("id"), str)}
    for e in out.edges:
        if "id" in e.data or not isinstance(e.data.get("source"), str):
            continue
        base = f"{e.data['source']}->{e.data.get('target')}"
        new, n = base, 1
        while new in taken:
            n += 1
            new = f"{base}#{n}"
        taken.add(new)
        e.data["id"] = new
        out.warn(join(e.path, "id"), f"edge has no id; named {new!r}")


def _goal(out: Normalised, raw: Any, name: str) -> None:
    graph_goal_id = out.graph.get("goal_id")
    fallback = graph_goal_id if isinstance(graph_goal_id, str) and graph_goal_id else f"{_slug(name)}-goal"
    if raw is None:
        out.warn("goal", f"no goal; using a stub goal {fallback!r}")
        out.goal = Located("goal", {"id": fallback, "name": name})
        return
    if not isinstance(raw, dict):
        out.error("goal", f"'goal' must be an object, got {type(raw).__name__}")
        out.goal = Located("goal", {"id": fallback})  # reported once, not again as missing keys
        return
    d = dict(raw)
    _rename(d, "goal_id", "id", "goal", out)
    if d.get("id") is None:
        out.warn("goal.id", f"goal has no id; using {fallback!r}")
        d["id"] = fallback
    for key, prefix, known, cls in (("success_criteria", "sc", CRITERION_KEYS, SuccessCriterion),
                                    ("constraints", "c", CONSTRAINT_KEYS, Constraint)):
        items = d.get(key)
        if isinstance(items, str | dict):
            items = [items]
        if isinstance(items, list):
            d[key] = [_goal_item(out, item, f"goal.{key}[{i}]", f"{prefix}-{i + 1}", known, cls)
                      for i, item in enumerate(items)]
    out.goal = Located("goal", _split_extra(d, GOAL_KEYS, _non_nullable(Goal)))


def _goal_item(out: Normalised, item: object, path: str, default_id: str,
               known: frozenset[str], cls: type) -> Any:
    if isinstance(item, str):  # older exports list criteria and constraints as plain text
        return {"id": default_id, "description": item}
    if not isinstance(item, dict):
        return item  # reported when the record is built
    d = dict(item)
    if d.get("id") is None:
        out.warn(join(path, "id"), f"no id; using {default_id!r}")
        d["id"] = default_id
    return _split_extra(d, known, _non_nullable(cls))
