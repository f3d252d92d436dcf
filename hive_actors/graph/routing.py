"""Routing decisions, pure and synchronous: which edges to follow after a node, and where
parallel branches join. No trio, no I/O: the executor feeds in outcomes and gets decisions.

Rules (SEMANTICS §2):
- Outgoing edges are tried by descending priority, one priority level at a time. The first
  level in which at least one edge holds decides: one edge = follow it, several = fan out.
  Lower levels are not evaluated, and every condition is evaluated at most once per decision.
- After a success: ``on_success``, ``always``, ``conditional`` (its expression is truthy; an
  empty expression holds; an evaluation error does not hold) and ``llm_decide`` (the verdict
  the caller obtained, defaulting to true) may hold.
- After a failure only ``on_failure`` edges hold: a failure never continues silently through an
  edge written for the success case (the reference also fires ``always`` edges; we do not).
- Branches of a fan-out join at the first node every branch can reach (fewest steps for the
  slowest branch, then fewest in total, then declaration order). The join node is not part of
  any branch; it runs once, after all of them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from hive_actors.errors import ExpressionError
from hive_actors.graph.expressions import Expression, compile_expression, edge_names
from hive_actors.graph.spec import EdgeCondition, EdgeSpec, GraphIndex, GraphSpec

_UNCONDITIONAL = (EdgeCondition.ON_SUCCESS, EdgeCondition.ALWAYS)


@attrs.frozen
class Decision:
    """The edges to follow (several = fan-out) and conditions that failed to evaluate."""

    edges: tuple[EdgeSpec, ...]
    # (edge id, error message) for conditions that raised; such edges did not hold
    errors: tuple[tuple[str, str], ...] = ()
    targets: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)

    @targets.default
    def _targets(self) -> tuple[str, ...]:
        return tuple(e.target for e in self.edges)


class RoutingTable:
    """Per-graph routing data built once: edge levels by priority and compiled conditions.

    Raises `ExpressionError` (from `compile_expression`) naming the edge when a condition is
    malformed. ``index`` is the graph's GraphIndex when the caller has one.
    """

    def __init__(self, graph: GraphSpec, index: GraphIndex | None = None) -> None:
        # keeps the index, not the graph: a graph's CompiledGraph must not keep it alive
        self.index = index if index is not None else GraphIndex.of(graph)
        self.levels: dict[str, tuple[tuple[EdgeSpec, ...], ...]] = {}
        self.compiled: dict[int, Expression] = {}
        self.has_llm_decide: set[str] = set()
        # nodes whose only outgoing edge is unconditional (the common chain): no evaluation,
        # one Decision reused for every success
        self.single: dict[str, Decision] = {}
        self._joins: dict[tuple[str, ...], str | None] = {}
        outgoing = self.index.outgoing
        for node in graph.nodes:
            edges = outgoing.get(node.id, ())
            levels: list[list[EdgeSpec]] = []
            for e in edges:  # already by descending priority
                if levels and levels[-1][0].priority == e.priority:
                    levels[-1].append(e)
                else:
                    levels.append([e])
                if e.condition == EdgeCondition.LLM_DECIDE:
                    self.has_llm_decide.add(node.id)
                if e.condition == EdgeCondition.CONDITIONAL and (e.condition_expr or "").strip():
                    self.compiled[id(e)] = _compile(e)
            self.levels[node.id] = tuple(tuple(level) for level in levels)
            if len(edges) == 1 and edges[0].condition in _UNCONDITIONAL:
                self.single[node.id] = Decision((edges[0],))

    def decide(
        self,
        node_id: str,
        succeeded: bool,
        output: Mapping[str, Any],
        buffer: Mapping[str, Any],
        llm_verdicts: Mapping[str, bool] | None = None,
    ) -> Decision:
        """The edges to follow from ``node_id`` given its outcome. Pure; never raises for a
        condition that fails to evaluate (it records the error and treats the edge as not
        holding). ``llm_verdicts`` maps llm_decide edge ids to the model's answer."""
        if succeeded:
            only = self.single.get(node_id)
            if only is not None:
                return only
        names: dict[str, Any] | None = None
        errors: list[tuple[str, str]] = []
        for level in self.levels.get(node_id, ()):
            held = []
            for e in level:
                cond = e.condition
                if not succeeded:
                    if cond == EdgeCondition.ON_FAILURE:
                        held.append(e)
                    continue
                if cond == EdgeCondition.ON_FAILURE:
                    continue
                if cond == EdgeCondition.CONDITIONAL:
                    expr = self.compiled.get(id(e))
                    if expr is None:
                        held.append(e)
                        continue
                    if names is None:
                        names = edge_names(output, buffer)
                    try:
                        if expr.evaluate(names):
                            held.append(e)
                    except Exception as exc:  # an unknown name or bad index: edge does not hold
                        errors.append((e.id, f"{type(exc).__name__}: {exc}"))
                elif cond == EdgeCondition.LLM_DECIDE:
                    if llm_verdicts is None or llm_verdicts.get(e.id, True):
                        held.append(e)
                else:  # on_success, always
                    held.append(e)
            if held:
                return Decision(tuple(held), tuple(errors))
        return Decision((), tuple(errors))

    def join_of(self, starts: Sequence[str]) -> str | None:
        """The node where branches starting at ``starts`` join, or None (cached)."""
        key = tuple(starts)
        if key not in self._joins:
            self._joins[key] = _find_join(self.index, key)
        return self._joins[key]


def find_join(graph: GraphSpec, starts: Sequence[str],
              index: GraphIndex | None = None) -> str | None:
    """The first node reachable from every start (over edges of any condition but
    on_failure), excluding the starts themselves; None when the branches never meet."""
    return _find_join(index if index is not None else GraphIndex.of(graph), starts)


def _find_join(index: GraphIndex, starts: Sequence[str]) -> str | None:
    if len(starts) < 2:
        return None
    outgoing = index.outgoing
    order = {node_id: i for i, node_id in enumerate(index.nodes)}  # declaration order
    dists = [_distances(outgoing, s) for s in starts]
    common = set(dists[0]).intersection(*dists[1:]) - set(starts)
    if not common:
        return None
    return min(
        common,
        key=lambda n: (max(d[n] for d in dists), sum(d[n] for d in dists), order.get(n, 1 << 30)),
    )


def _distances(outgoing: Mapping[str, tuple[EdgeSpec, ...]], start: str) -> dict[str, int]:
    dist = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for e in outgoing.get(node, ()):
            if e.condition != EdgeCondition.ON_FAILURE and e.target not in dist:
                dist[e.target] = dist[node] + 1
                queue.append(e.target)
    return dist


def _compile(edge: EdgeSpec) -> Expression:
    try:
        return compile_expression(edge.condition_expr or "")
    except ExpressionError as exc:
        raise ExpressionError(
            f"edge {edge.id!r} ({edge.source} -> {edge.target}): bad condition_expr "
            f"{edge.condition_expr!r}: {exc}"
        ) from None

