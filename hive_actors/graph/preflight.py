"""Checks made before an execution runs anything: entry node, node types, tools."""

from __future__ import annotations

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
    checks = graph._cache.get("preflight")
    if checks is None:
        checks = graph._cache["preflight"] = _static_checks(graph)
    if not checks:
        return None
    problems = []
    for node_id, problem, names in checks:
        if problem is not None:
            problems.append(problem)
            continue
        missing = sorted(t for t in names if t not in tools)
        if missing:
            problems.append(f"node {node_id!r} needs tools {missing}")
    if not problems:
        return None
    available = ", ".join(tools.names()) or "none"
    return (
        "cannot run graph: " + "; ".join(problems)
        + f" (registered tools: {available}; pass tools=... or tool_executor=...)"
    )


def _static_checks(graph: GraphSpec) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """Per node, in node order, what does not depend on the tools: ``(node id, problem,
    ())`` for a type nobody runs, ``(node id, None, tool names)`` for a conversation node that
    names tools (checked against the registry of each run). Empty when nothing can fail."""
    checks: list[tuple[str, str | None, tuple[str, ...]]] = []
    for node in graph.nodes:
        impl = implementation_for(node)
        if impl is None:
            checks.append((node.id, (
                f"node {node.id!r} has type {node.node_type!r}, which this executor cannot run "
                f"(known: {sorted(NODE_IMPLEMENTATIONS)})"
            ), ()))
        elif impl.uses_conversation and node.tools:
            checks.append((node.id, None, tuple(node.tools)))
    return checks
