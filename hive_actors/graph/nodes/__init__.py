"""Node implementations by type. Importing this package registers the built-in types."""

from hive_actors.graph.nodes.base import (
    NODE_IMPLEMENTATIONS,
    NodeContext,
    NodeImpl,
    NodeOutcome,
    implementation_for,
    register_node_type,
)
from hive_actors.graph.nodes import event_loop, function, router  # noqa: F401  (registers)

__all__ = [
    "NODE_IMPLEMENTATIONS",
    "NodeContext",
    "NodeImpl",
    "NodeOutcome",
    "implementation_for",
    "register_node_type",
]
