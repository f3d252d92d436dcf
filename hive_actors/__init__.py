"""hive_actors: run Hive-style LLM agent graphs on an actor-model runtime built on trio.

The names users need are re-exported here and imported on first use, so that
``hive-actors validate`` does not pay for the runtime it does not start.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from hive_actors.hive_compat import install as _install_framework_aliases  # noqa: E402

_install_framework_aliases()  # Hive's ``framework.*`` imports, unless Hive is installed

_EXPORTS = {
    "AgentRunner": "hive_actors.runner.runner",
    "AgentRuntime": "hive_actors.runtime.agent_runtime",
    "create_agent_runtime": "hive_actors.runtime.agent_runtime",
    "RuntimeConfig": "hive_actors.runtime.agent_runtime",
    "EntryPointSpec": "hive_actors.graph.spec",
    "EventBus": "hive_actors.runtime.event_bus",
    "EventType": "hive_actors.events",
    "AgentEvent": "hive_actors.events",
    "GraphExecutor": "hive_actors.graph.executor",
    "ExecutorConfig": "hive_actors.graph.executor",
    "ExecutionResult": "hive_actors.graph.result",
    "SessionState": "hive_actors.graph.result",
    "GraphSpec": "hive_actors.graph.spec",
    "NodeSpec": "hive_actors.graph.spec",
    "EdgeSpec": "hive_actors.graph.spec",
    "EdgeCondition": "hive_actors.graph.spec",
    "Goal": "hive_actors.graph.spec",
    "SuccessCriterion": "hive_actors.graph.spec",
    "Constraint": "hive_actors.graph.spec",
    "CheckpointConfig": "hive_actors.graph.checkpoint_config",
    "load_agent": "hive_actors.graph.loader",
    "ScriptedLLM": "hive_actors.llm.scripted",
    "Reply": "hive_actors.llm.scripted",
    "tool": "hive_actors.tools.registry",
    "ToolRegistry": "hive_actors.tools.registry",
    "open_event_feed": "hive_actors.feed",
    "MCPServerConfig": "hive_actors.tools.mcp_config",
    "load_mcp_config": "hive_actors.tools.mcp_config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # Any: the re-exported names are classes and functions of many types
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hive_actors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
