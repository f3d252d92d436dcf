"""The node protocol, what a node gets (NodeContext) and returns (NodeOutcome), and the
registry mapping node types to implementations. Adding a node type is one class:

    @register_node_type
    class EchoNode(NodeImpl):
        node_type = "echo"
        async def run(self, ctx): return NodeOutcome.ok(dict(ctx.inputs))
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar

import attrs

from hive_actors.graph.expressions import Expression
from hive_actors.graph.services import Services
from hive_actors.graph.spec import LEGACY_NODE_TYPES, Goal, GraphIndex, GraphSpec, NodeSpec
from hive_actors.tools.registry import ToolRegistry

# The tool schemas offered to one node, and their names.
ToolSchemas = tuple[tuple[dict[str, Any], ...], frozenset[str]]


@attrs.define(slots=True, eq=False)
class GraphLookups:
    """What node implementations look up about their graph: its index, and values derived
    from it on first use that stay valid for the graph's lifetime. One per compiled graph
    (`hive_actors.graph.compiled.CompiledGraph.lookups`), shared by all its executions.

    ``system_prompts`` is keyed by (node id, goal id), ``max_iterations`` by (node id, the
    executor's default), ``router_exprs`` by node id, ``tool_schemas`` by registry, then
    node id.
    """

    index: GraphIndex
    system_prompts: dict[tuple[str, str], str] = attrs.field(factory=dict)
    max_iterations: dict[tuple[str, int], int] = attrs.field(factory=dict)
    router_exprs: dict[str, Expression] = attrs.field(factory=dict)
    tool_schemas: weakref.WeakKeyDictionary[ToolRegistry, dict[str, ToolSchemas]] = attrs.field(
        factory=weakref.WeakKeyDictionary
    )


@attrs.define(slots=True)
class NodeOutcome:
    """What one attempt of a node produced.

    ``output`` holds values for the node's output keys (the executor checks them and writes
    them to the buffer). ``next_node`` (routers) overrides the outgoing edges. ``paused`` means
    the node stopped waiting for client input that did not come in time; it runs again on
    resume.
    """

    success: bool
    output: dict[str, Any] = attrs.field(factory=dict)
    error: str | None = None
    next_node: str | None = None
    paused: bool = False
    tokens: int = 0
    final: bool = False  # a failure retrying cannot fix (a definition error)

    @classmethod
    def ok(cls, output: dict[str, Any] | None = None, **kw: Any) -> NodeOutcome:
        return cls(True, output if output is not None else {}, **kw)

    @classmethod
    def fail(cls, error: str, **kw: Any) -> NodeOutcome:
        return cls(False, error=error, **kw)


@attrs.define(slots=True)
class NodeContext:
    """Everything one attempt of a node may use.

    ``inputs`` are the node's ``input_keys`` found in the buffer (or the shared scope).
    ``buffer`` is the execution's buffer, for reading only: nodes report outputs in their
    outcome. ``conversation`` is the message list this node continues (event_loop nodes),
    owned by the execution so that a pause or checkpoint captures it. ``resuming`` is true
    when the node paused waiting for input and is being continued with the user's reply.
    ``lookups`` holds the graph's index and per-graph values (system prompts, tool schemas).
    """

    node: NodeSpec
    graph: GraphSpec
    goal: Goal
    inputs: dict[str, Any]
    buffer: dict[str, Any]
    services: Services
    attempt: int = 0
    visit: int = 1
    conversation: list[dict[str, Any]] | None = None
    previous_node: str | None = None
    resuming: bool = False
    lookups: GraphLookups = attrs.field(kw_only=True)
    session_id: str = attrs.field(default="", kw_only=True)


class NodeImpl:
    """A node type's behaviour. Implementations are stateless: one instance serves every node
    of its type in every execution. ``run`` returns an outcome; an exception it raises is a
    failure of that attempt (trio.Cancelled passes through)."""

    node_type: ClassVar[str] = ""
    # True for types that continue a conversation (the executor hands them one)
    uses_conversation: ClassVar[bool] = False

    async def run(self, ctx: NodeContext) -> NodeOutcome:  # pragma: no cover - protocol
        raise NotImplementedError


NODE_IMPLEMENTATIONS: dict[str, NodeImpl] = {}


def register_node_type(cls: type[NodeImpl]) -> type[NodeImpl]:
    """Class decorator: make ``cls`` the implementation of ``cls.node_type``."""
    if not cls.node_type:
        raise ValueError(f"{cls.__name__} must set node_type")
    NODE_IMPLEMENTATIONS[cls.node_type] = cls()
    return cls


def implementation_for(node: NodeSpec) -> NodeImpl | None:
    """The implementation of ``node``'s type (legacy Hive types map to event_loop)."""
    impl = NODE_IMPLEMENTATIONS.get(node.node_type)
    if impl is None:
        impl = NODE_IMPLEMENTATIONS.get(LEGACY_NODE_TYPES.get(node.node_type, ""))
    return impl
