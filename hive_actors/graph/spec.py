"""The graph model: goals, nodes, edges and graphs as frozen attrs records.

These mirror Hive's export format (``agent.json``) and keep every field the reference drops
(``conversation_mode``, ``identity_prompt``, edge ``description``, ``loop_config``, goal
``context``). Keys a record does not know are kept in ``extra`` so nothing a user wrote is lost.
(De)serialisation goes through :data:`hive_actors.serde.converter`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

# Node types hive_actors runs. Legacy Hive types are mapped by the loader (see LEGACY_NODE_TYPES).
NODE_TYPES = ("event_loop", "function", "router")
LEGACY_NODE_TYPES = {
    "llm_generate": "event_loop",
    "llm_tool_use": "event_loop",
    "gcu": "event_loop",
    "human_input": "event_loop",  # becomes a client-facing event_loop node
}


class EdgeCondition(str, enum.Enum):
    ALWAYS = "always"
    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    CONDITIONAL = "conditional"
    LLM_DECIDE = "llm_decide"


@attrs.frozen
class SuccessCriterion:
    id: str
    description: str = ""
    metric: str = ""
    target: Any = ""
    weight: float = 1.0
    type: str = "success_rate"
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Constraint:
    id: str
    description: str = ""
    constraint_type: str = "hard"  # "hard" (MUST) | "soft" (SHOULD)
    category: str = "general"
    check: str = ""
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Goal:
    id: str
    name: str = ""
    description: str = ""
    success_criteria: tuple[SuccessCriterion, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    context: dict[str, Any] = attrs.field(factory=dict)
    extra: dict[str, Any] = attrs.field(factory=dict)

    def to_prompt_context(self) -> str:
        """Markdown describing the goal for system prompts; "" for a stub goal."""
        if not (self.success_criteria or self.constraints or self.context or self.description):
            return ""
        lines = [f"# Goal: {self.name or self.id}"]
        if self.description:
            lines.append(self.description)
        if self.success_criteria:
            lines.append("## Success Criteria:")
            lines += [f"- {c.description or c.id}" for c in self.success_criteria]
        if self.constraints:
            lines.append("## Constraints:")
            for c in self.constraints:
                tag = "[MUST]" if c.constraint_type == "hard" else "[SHOULD]"
                lines.append(f"- {tag} {c.description or c.id}")
        if self.context:
            lines.append("## Context:")
            lines += [f"- {k}: {v}" for k, v in self.context.items()]
        return "\n".join(lines)


@attrs.frozen
class NodeSpec:
    id: str
    name: str = ""
    description: str = ""
    node_type: str = "event_loop"
    input_keys: tuple[str, ...] = ()
    output_keys: tuple[str, ...] = ()
    nullable_output_keys: tuple[str, ...] = ()
    input_schema: dict[str, Any] = attrs.field(factory=dict)
    output_schema: dict[str, Any] = attrs.field(factory=dict)
    system_prompt: str | None = None
    tools: tuple[str, ...] = ()
    model: str | None = None
    # function nodes: "module:attr", resolved against the agent folder first, then sys.path
    function: str | None = None
    # router nodes: {label: target node id}; `route_expr` picks the label (see nodes/router.py)
    routes: dict[str, str] = attrs.field(factory=dict)
    # retries after the first failed attempt
    max_retries: int = 0
    retry_on: tuple[str, ...] = ()
    max_node_visits: int = 0  # 0 = unlimited
    client_facing: bool = False
    success_criteria: str | None = None
    sub_agents: tuple[str, ...] = ()
    # the Hive type this node was converted from ("llm_generate", "human_input", ...), if any
    legacy_type: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def required_output_keys(self) -> tuple[str, ...]:
        nullable = set(self.nullable_output_keys)
        return tuple(k for k in self.output_keys if k not in nullable)


@attrs.frozen
class EdgeSpec:
    id: str
    source: str
    target: str
    condition: EdgeCondition = EdgeCondition.ON_SUCCESS
    condition_expr: str | None = None
    priority: int = 0
    input_mapping: dict[str, str] = attrs.field(factory=dict)
    description: str = ""
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ParallelConfig:
    """How fan-out branches behave."""

    on_branch_failure: str = "fail_all"  # "fail_all" | "continue_others"
    buffer_conflict_strategy: str = "last_wins"  # "last_wins" | "first_wins" | "error"
    branch_timeout_seconds: float | None = None


@attrs.frozen
class RetryConfig:
    """Delay between retries of a failed node: base * factor**(attempt-1), capped."""

    base_delay_seconds: float = 0.0
    factor: float = 2.0
    max_delay_seconds: float = 30.0


@attrs.frozen
class GraphSpec:
    id: str
    entry_node: str
    goal_id: str = ""
    version: str = "1.0.0"
    description: str = ""
    nodes: tuple[NodeSpec, ...] = ()
    edges: tuple[EdgeSpec, ...] = ()
    # named entry points: {entry point id: node id}
    entry_points: dict[str, str] = attrs.field(factory=dict)
    terminal_nodes: tuple[str, ...] = ()
    pause_nodes: tuple[str, ...] = ()
    max_steps: int = 100
    max_tokens: int | None = None
    loop_config: dict[str, Any] = attrs.field(factory=dict)
    conversation_mode: str = "continuous"  # "continuous" | "isolated"
    identity_prompt: str | None = None
    parallel: ParallelConfig = ParallelConfig()
    retry: RetryConfig = RetryConfig()
    extra: dict[str, Any] = attrs.field(factory=dict)

    # One-off lookups scan the record; code that looks up nodes and edges on every step uses
    # the graph's GraphIndex (`compile_graph(graph).index`, built once per graph).
    def get_node(self, node_id: str) -> NodeSpec | None:
        for node in self.nodes:
            if node.id == node_id:
                return node
        return None

    def outgoing(self, node_id: str) -> tuple[EdgeSpec, ...]:
        """Outgoing edges by descending priority, ties in declaration order."""
        return _by_priority([e for e in self.edges if e.source == node_id])

    def incoming(self, node_id: str) -> tuple[EdgeSpec, ...]:
        return tuple(e for e in self.edges if e.target == node_id)


@attrs.frozen(eq=False)
class GraphIndex:
    """A graph's nodes by id and its edges by source and by target, built in one pass.

    ``outgoing`` lists each node's edges by descending priority, ties in declaration order
    (as `GraphSpec.outgoing`); nodes without edges are absent from ``outgoing``/``incoming``.
    """

    nodes: Mapping[str, NodeSpec]
    outgoing: Mapping[str, tuple[EdgeSpec, ...]]
    incoming: Mapping[str, tuple[EdgeSpec, ...]]

    @classmethod
    def of(cls, graph: GraphSpec) -> GraphIndex:
        out: dict[str, list[EdgeSpec]] = {}
        inc: dict[str, list[EdgeSpec]] = {}
        for e in graph.edges:
            out.setdefault(e.source, []).append(e)
            inc.setdefault(e.target, []).append(e)
        return cls(
            nodes={n.id: n for n in graph.nodes},
            outgoing={k: _by_priority(v) for k, v in out.items()},
            incoming={k: tuple(v) for k, v in inc.items()},
        )


def _by_priority(edges: list[EdgeSpec]) -> tuple[EdgeSpec, ...]:
    return tuple(sorted(edges, key=lambda e: -e.priority))  # stable: ties keep their order


TRIGGER_TYPES = ("manual", "timer", "event")
ISOLATION_LEVELS = ("isolated", "shared", "synchronized")


@attrs.frozen
class EntryPointSpec:
    id: str
    entry_node: str
    name: str = ""
    trigger_type: str = attrs.field(default="manual", validator=attrs.validators.in_(TRIGGER_TYPES))
    # timer: {"interval_seconds": 60} or {"cron": "*/5 * * * *"};
    # event: {"event_types": [...], "stream_id": ..., ...filters}
    trigger_config: dict[str, Any] = attrs.field(factory=dict)
    isolation_level: str = attrs.field(
        default="isolated", validator=attrs.validators.in_(ISOLATION_LEVELS)
    )
    max_concurrent: int = attrs.field(default=100, validator=attrs.validators.ge(1))
    max_queued: int = attrs.field(default=10_000, validator=attrs.validators.ge(0))
