"""Test doubles for runtime tests: a controllable executor and a tiny graph."""

from __future__ import annotations

from typing import Any

import trio

from hive_actors.graph.result import ExecutionResult, SessionState
from hive_actors.graph.spec import EdgeSpec, Goal, GraphSpec, NodeSpec
from hive_actors.events import EventType


def line_graph(*ids: str, graph_id: str = "g") -> GraphSpec:
    nodes = tuple(NodeSpec(id=i, node_type="function", function=f"fn_{i}") for i in ids)
    edges = tuple(EdgeSpec(id=f"{a}->{b}", source=a, target=b) for a, b in zip(ids, ids[1:]))
    return GraphSpec(id=graph_id, entry_node=ids[0], nodes=nodes, edges=edges)


GOAL = Goal(id="goal", name="test goal")


class Gates:
    """Named trio.Events an executor can block on (``input_data["block"]``)."""

    def __init__(self) -> None:
        self.events: dict[str, trio.Event] = {}
        self.entered: dict[str, trio.Event] = {}

    def gate(self, name: str) -> trio.Event:
        return self.events.setdefault(name, trio.Event())

    def entered_event(self, name: str) -> trio.Event:
        return self.entered.setdefault(name, trio.Event())


class FakeExecutor:
    """Walks the graph's nodes in order, emitting node events; blocks where told to.

    ``input_data["block"] = name`` blocks in the first node until ``gates.gate(name)`` is set;
    ``input_data["fail"]`` raises inside the execution; the output echoes the input.
    """

    gates = Gates()
    started: list[str] = []

    def __init__(self, llm: Any = None, tools: Any = None, tool_executor: Any = None,
                 storage_path: Any = None, events: Any = None, checkpoint_store: Any = None,
                 scope: Any = None, config: Any = None, *, resolved: Any = None,
                 step_log: Any = None) -> None:
        self.events = events
        self.store = checkpoint_store
        self.config = config
        self.inputs: list[tuple[str, Any]] = []

    current_node_id: str | None = None  # the run interface the streams use

    def start(self, *, events: Any = None, storage_path: Any = None,
              checkpoint_store: Any = None, scope: Any = None, step_log: Any = None
              ) -> FakeExecutor:
        """One execution (the streams make one executor per entry point)."""
        return FakeExecutor(events=events, checkpoint_store=checkpoint_store, config=self.config)

    async def inject_input(self, node_id: str, content: Any) -> bool:
        self.inputs.append((node_id, content))
        return True

    def decline_input(self, node_id: str) -> bool:
        return False

    async def execute(self, graph: GraphSpec, goal: Goal, input_data: dict[str, Any],
                      session_state: Any = None, checkpoint_config: Any = None, *,
                      session_id: str | None = None, entry_node: str | None = None
                      ) -> ExecutionResult:
        FakeExecutor.started.append(session_id or "")
        prev = SessionState.from_dict(session_state) if session_state is not None else None
        done = list(prev.execution_path) if prev else []
        memory = dict(prev.memory) if prev else {}
        memory.update(input_data)
        for node in graph.nodes:
            if node.id in done:
                continue
            await self.events.emit(EventType.NODE_STARTED, node.id)
            block = memory.get("block")
            if block and node.id == graph.nodes[0].id:
                FakeExecutor.gates.entered_event(block).set()
                await FakeExecutor.gates.gate(block).wait()
            if memory.get("fail"):
                raise RuntimeError("boom in " + node.id)
            if memory.get("ask") and self.config.current_input_timeout() == 0:
                return ExecutionResult(success=True, paused_at=node.id, session_id=session_id or "",
                                       status="paused", path=tuple(done))
            done.append(node.id)
            memory[f"visited_{node.id}"] = True
            if self.store is not None:
                cp = await self.store.save("node_complete", node.id, SessionState(
                    session_id=session_id or "", memory=memory, execution_path=tuple(done)))
                await self.events.emit(EventType.CHECKPOINT_SAVED, node.id, seq=cp.seq)
            await self.events.emit(EventType.NODE_COMPLETED, node.id)
        return ExecutionResult(success=True, output=memory, path=tuple(done),
                               steps_executed=len(done), session_id=session_id or "")
