"""Checks made before an execution runs anything: entry node, node types, tools, conditions."""

from __future__ import annotations

from hive_actors.graph.compiled import CompiledGraph
from hive_actors.graph.spec import GraphSpec
from hive_actors.tools.registry import ToolRegistry

TOOLS_HINT = (
    "Give the agent its tools: an mcp_servers.json beside agent.json, or on the command line "
    "`--mcp-config FILE` (run, serve, resume, info); in Python "
    "AgentRunner.load(path, mcp_servers=FILE_OR_DICT) or tools=[...]; or a tools.py in the "
    "agent folder.")


def preflight_error(graph: GraphSpec, compiled: CompiledGraph, tools: ToolRegistry,
                    entry_node: str | None) -> str | None:
    """Why ``graph`` (compiled as ``compiled``) cannot run with ``tools`` from ``entry_node``
    (a message naming the node or edge), or None. Node types and tools come first, then
    malformed edge conditions."""
    nodes = compiled.index.nodes
    if entry_node is not None:
        start = graph.entry_points.get(entry_node, entry_node)
        if start not in nodes:
            return f"entry node {entry_node!r} is neither a node nor an entry point of the graph"
    elif graph.entry_node not in nodes:
        return f"entry node {graph.entry_node!r} is not a node of graph {graph.id!r}"
    if compiled.checks:
        problems = []
        for check in compiled.checks:
            if check.problem is not None:
                problems.append(check.problem)
                continue
            missing = sorted(t for t in check.tools if t not in tools)
            if missing:
                problems.append(f"node {check.node_id!r} needs tools {missing}")
        if problems:
            available = ", ".join(tools.names()) or "none"
            return (
                "cannot run graph: " + "; ".join(problems)
                + f" (registered tools: {available}). {TOOLS_HINT}"
            )
    return compiled.routing_error
