"""CompiledGraph: what the executor and the nodes derive from a GraphSpec, built once per graph.

`compile_graph(graph)` returns the same CompiledGraph for the same GraphSpec object for as long
as that object lives (an identity-keyed memo with weak references: a GraphSpec is a value with
unhashable fields, and two equal graphs may still be different agents). The lookup is one dict
get and an identity check, so executions pay nothing for it. Building never raises: a graph that
cannot run keeps the reasons in ``checks`` and ``routing_error``, reported by preflight.
A CompiledGraph holds the graph's nodes and edges but never the GraphSpec itself, so the memo
does not keep a graph alive: its entry goes when the graph does.
"""

from __future__ import annotations

import attrs

from hive_actors.errors import ExpressionError
from hive_actors.graph.nodes.base import (
    NODE_IMPLEMENTATIONS,
    GraphLookups,
    NodeImpl,
    implementation_for,
)
from hive_actors.graph.identity import IdentityMap
from hive_actors.graph.routing import RoutingTable
from hive_actors.graph.spec import GraphIndex, GraphSpec, NodeSpec


@attrs.frozen(eq=False)
class NodePlan:
    """Facts about one node the hot path reads instead of the spec: its implementation, the
    keys it may write and those a function node must write."""

    impl: NodeImpl
    output_keys: frozenset[str]
    required: tuple[str, ...]
    check_required: bool

    @classmethod
    def of(cls, node: NodeSpec, impl: NodeImpl) -> NodePlan:
        return cls(impl, frozenset(node.output_keys), node.required_output_keys,
                   impl.node_type == "function")


@attrs.frozen
class PreflightCheck:
    """A node that may stop the graph from running: ``problem`` when its type has no
    implementation, else the ``tools`` it names (checked against each run's registry)."""

    node_id: str
    problem: str | None = None
    tools: tuple[str, ...] = ()


@attrs.frozen(eq=False)
class CompiledGraph:
    """Everything derived from one GraphSpec that its executions share (the executor is
    handed the GraphSpec itself with each execution).

    - ``index``: nodes by id, edges by source and target (`GraphIndex`).
    - ``routing``: the routing table, or None with ``routing_error`` when a condition is
      malformed.
    - ``plans``: a `NodePlan` per node whose type has an implementation.
    - ``checks``: per node, in node order, what preflight checks before each run.
    - ``lookups``: the index and per-graph values node implementations fill on first use.
    """

    index: GraphIndex
    routing: RoutingTable | None
    routing_error: str | None
    plans: dict[str, NodePlan]
    checks: tuple[PreflightCheck, ...]
    lookups: GraphLookups


_compiled: IdentityMap[GraphSpec, CompiledGraph] = IdentityMap()


def compile_graph(graph: GraphSpec) -> CompiledGraph:
    """The CompiledGraph of ``graph``, built on the first call for this object."""
    hit = _compiled.get(graph)
    if hit is not None:
        return hit
    compiled = _build(graph)
    _compiled.set(graph, compiled)
    return compiled


def _build(graph: GraphSpec) -> CompiledGraph:
    index = GraphIndex.of(graph)
    routing: RoutingTable | None = None
    routing_error = None
    try:
        routing = RoutingTable(graph, index)
    except ExpressionError as exc:  # a malformed condition; the message names the edge
        routing_error = str(exc)
    plans: dict[str, NodePlan] = {}
    checks: list[PreflightCheck] = []
    for node in graph.nodes:
        impl = implementation_for(node)
        if impl is None:
            checks.append(PreflightCheck(node.id, problem=(
                f"node {node.id!r} has type {node.node_type!r}, which this executor cannot run "
                f"(known: {sorted(NODE_IMPLEMENTATIONS)})"
            )))
            continue
        plans[node.id] = NodePlan.of(node, impl)
        if impl.uses_conversation and node.tools:
            checks.append(PreflightCheck(node.id, tools=tuple(node.tools)))
    return CompiledGraph(index, routing, routing_error, plans, tuple(checks),
                         GraphLookups(index))
