"""Checks made before an execution runs anything: entry node, node types, tools."""

from __future__ import annotations

import weakref

from hive_actors.graph.nodes import NODE_IMPLEMENTATIONS, implementation_for
from hive_actors.graph.spec import GraphSpec
from hive_actors.tools.registry import ToolRegistry


def preflight_error(graph: GraphSpec, tools: ToolRegistry, entry_node: str | None) -> str | None:
    """Why ``graph`` cannot run with ``tools`` (a message naming the node), or None."""
    if entry_node is not None:
        start = graph.entry_points.get(entry_node, entry_node)
        if graph.get_node(start) is None:
            return f"entry node {entry_node!r} is neither a node nor an entry point of the graph"
    elif graph.get_node(graph.entry_node) is None:
        return f"entry node {graph.entry_node!r} is not a node of graph {graph.id!r}"
    cache = graph._cache.setdefault("preflight", weakref.WeakKeyDictionary())
    if tools not in cache:
        cache[tools] = _static_error(graph, tools)
    return cache[tools]


def _static_error(graph: GraphSpec, tools: ToolRegistry) -> str | None:
    problems = []
    for node in graph.nodes:
        impl = implementation_for(node)
        if impl is None:
            problems.append(
                f"node {node.id!r} has type {node.node_type!r}, which this executor cannot run "
                f"(known: {sorted(NODE_IMPLEMENTATIONS)})"
            )
            continue
        if impl.uses_conversation:
            missing = sorted(t for t in node.tools if t not in tools)
            if missing:
                problems.append(f"node {node.id!r} needs tools {missing}")
    if not problems:
        return None
    available = ", ".join(tools.names()) or "none"
    return (
        "cannot run graph: " + "; ".join(problems)
        + f" (registered tools: {available}; pass tools=... or tool_executor=...)"
    )
