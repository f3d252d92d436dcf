"""Router nodes: pick the next node from the buffer, without a model.

The node's ``routes`` map labels to node ids. The label comes from the expression in the
node's ``route_expr`` (kept in ``extra`` by the loader; ``condition_expr`` and ``expression``
are accepted too), evaluated with every buffer key as a name; without an expression, from the
first of the node's output keys, then input keys, whose buffer value is a route label. A label
that is a node id is followed even without a ``routes`` entry. With no label the ``default``
route is taken if there is one; otherwise the router's outgoing edges decide, and without
edges a router that has routes fails (naming the value and the routes; never retried).
"""

from __future__ import annotations

from typing import Any

from hive_actors.graph.expressions import compile_expression, edge_names
from hive_actors.graph.nodes.base import NodeContext, NodeImpl, NodeOutcome, register_node_type

_EXPR_KEYS = ("route_expr", "condition_expr", "expression", "router_expr")


def route_expression(extra: dict[str, Any]) -> str | None:
    for k in _EXPR_KEYS:
        v = extra.get(k)
        if isinstance(v, str) and v.strip():
            return v
    return None


@register_node_type
class RouterNode(NodeImpl):
    node_type = "router"

    async def run(self, ctx: NodeContext) -> NodeOutcome:
        node = ctx.node
        routes = node.routes
        label: Any = None
        expr_text = route_expression(node.extra)
        nodes = ctx.lookups.index.nodes
        if expr_text is not None:
            cache = ctx.lookups.router_exprs
            expr = cache.get(node.id)
            if expr is None:
                expr = cache[node.id] = compile_expression(expr_text)
            try:
                label = expr.evaluate(edge_names(dict(ctx.buffer), dict(ctx.buffer)))
            except Exception as exc:
                return NodeOutcome.fail(f"route expression {expr_text!r} failed: {exc}")
        else:
            for key in (*node.output_keys, *node.input_keys):
                value = ctx.buffer.get(key)
                if isinstance(value, str) and (value in routes or nodes.get(value)):
                    label = value
                    break
        target = None
        if label is not None:
            label_text = label if isinstance(label, str) else str(label).lower()
            target = routes.get(label_text)
            if target is None and nodes.get(label_text) is not None:
                target = label_text
        if target is None:
            target = routes.get("default")
        if target is None and routes and not ctx.lookups.index.outgoing.get(node.id):
            known = ", ".join(f"{k!r} -> {v}" for k, v in routes.items()) or "none"
            return NodeOutcome.fail(
                f"router {node.id!r}: value {label!r} matches no route (routes: {known}) and "
                "the router has no outgoing edges", final=True)
        if target is not None and nodes.get(target) is None:
            return NodeOutcome.fail(f"route {label!r} names node {target!r}, which does not exist")
        return NodeOutcome.ok({}, next_node=target)
