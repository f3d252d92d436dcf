"""Small builders shared by the executor and event-loop tests."""

from __future__ import annotations

from typing import Any

from hive_actors.graph.executor import ExecutorConfig, GraphExecutor
from hive_actors.graph.spec import EdgeCondition, EdgeSpec, Goal, GraphSpec, NodeSpec

_CONFIG_FIELDS = {a.name for a in ExecutorConfig.__attrs_attrs__}

GOAL = Goal("g", name="Test goal", description="Exercise the executor")


def fn(node_id: str, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = (), **kw: Any) -> NodeSpec:
    """A function node whose callable is registered under its own id."""
    return NodeSpec(node_id, name=node_id, node_type="function", function=node_id,
                    input_keys=inputs, output_keys=outputs, **kw)


def llm_node(node_id: str, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = (), **kw: Any) -> NodeSpec:
    return NodeSpec(node_id, name=node_id, node_type="event_loop", input_keys=inputs,
                    output_keys=outputs, **kw)


def edge(source: str, target: str, condition: str = "on_success", expr: str | None = None,
         priority: int = 0, **kw: Any) -> EdgeSpec:
    return EdgeSpec(f"{source}->{target}", source, target, EdgeCondition(condition), expr,
                    priority, **kw)


def chain(*ids: str) -> tuple[EdgeSpec, ...]:
    return tuple(edge(a, b) for a, b in zip(ids, ids[1:]))


def graph(nodes: tuple[NodeSpec, ...] | list[NodeSpec], edges: tuple[EdgeSpec, ...] | list[EdgeSpec] = (),
          entry: str | None = None, **kw: Any) -> GraphSpec:
    nodes = tuple(nodes)
    return GraphSpec(id="test-graph", entry_node=entry or nodes[0].id, nodes=nodes,
                     edges=tuple(edges), **kw)


def executor(functions: dict[str, Any] | None = None, **kw: Any) -> GraphExecutor:
    config_kw = {k: kw.pop(k) for k in list(kw) if k in _CONFIG_FIELDS}
    return GraphExecutor(config=ExecutorConfig(functions=functions or {}, retry_delay_override=0.0,
                                               **config_kw), **kw)


class Flaky:
    """A function node callable that fails ``failures`` times, then returns ``result``."""

    def __init__(self, failures: int, result: dict[str, Any] | None = None) -> None:
        self.failures = failures
        self.calls = 0
        self.result = result or {}

    async def __call__(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"flaky failure {self.calls}")
        return dict(self.result)
