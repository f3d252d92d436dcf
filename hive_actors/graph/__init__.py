"""Graph model, loader, expressions and the executor."""

from hive_actors.graph.checkpoint_config import CheckpointConfig
from hive_actors.graph.spec import (
    Constraint,
    EdgeCondition,
    EdgeSpec,
    Goal,
    GraphSpec,
    NodeSpec,
    ParallelConfig,
    RetryConfig,
    SuccessCriterion,
)

__all__ = [
    "CheckpointConfig",
    "Constraint",
    "EdgeCondition",
    "EdgeSpec",
    "Goal",
    "GraphSpec",
    "NodeSpec",
    "ParallelConfig",
    "RetryConfig",
    "SuccessCriterion",
]
