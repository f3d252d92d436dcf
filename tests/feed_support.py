"""Helpers for the feed tests: a JSON websocket client over trio-websocket, and a small fake
runtime on the real EventBus for tests about the feed alone (protocol, limits, security)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import trio
from trio_websocket import WebSocketConnection

from hive_actors.errors import UnknownEntryPointError
from hive_actors.runtime.event_bus import EventBus
from hive_actors.events import EventType


class FeedClient:
    """Sends requests with increasing ids and sorts what comes back."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []  # event / events_dropped messages seen so far

    async def send(self, type: str, **fields: Any) -> int:
        request_id = next(self._ids)
        await self.ws.send_message(json.dumps({"type": type, "id": request_id, **fields}))
        return request_id

    async def receive(self) -> dict[str, Any]:
        return json.loads(await self.ws.get_message())

    async def reply_to(self, request_id: Any) -> dict[str, Any]:
        """The reply naming ``request_id``; events seen meanwhile go to ``self.events``."""
        while True:
            message = await self.receive()
            if message["type"] in ("result", "error") and message["id"] == request_id:
                return message
            self.events.append(message)

    async def call(self, type: str, **fields: Any) -> dict[str, Any]:
        return await self.reply_to(await self.send(type, **fields))

    async def next_event(self, *types: str) -> dict[str, Any]:
        """The next event message (from the backlog first) whose event type is in ``types``."""
        while True:
            if not self.events:
                self.events.append(await self.receive())
            message = self.events.pop(0)
            if message["type"] == "event" and (not types or message["event"]["type"] in types):
                return message


async def ask_and_answer(c: FeedClient, content: str) -> tuple[str, dict[str, Any],
                                                             dict[str, Any]]:
    """Subscribe, trigger ``default``, wait for intake's question (interview_graph) and
    answer it with ``content``: (execution id, the question event, the inject_input reply)."""
    await c.call("subscribe")
    execution_id = (await c.call("trigger", entry_point="default",
                                 input={"who": "me"}))["result"]["execution_id"]
    asked = await c.next_event("client_input_requested")
    assert asked["event"]["node_id"] == "intake"
    assert asked["event"]["data"]["prompt"] == "Which topic shall I research?"
    reply = await c.call("inject_input", node_id="intake", content=content,
                         execution_id=execution_id)
    return execution_id, asked, reply


class FakeRuntime:
    """Follows AgentRuntime's surface the feed uses; ``trigger`` emits a few events at once."""

    def __init__(self, bus: EventBus) -> None:
        self.event_bus = bus
        self.injected: list[tuple[str, str, str | None]] = []
        self._ids = itertools.count(1)

    async def trigger(self, entry_point_id: str, input_data: dict[str, Any],
                      session_state: Any = None, idempotency_key: str | None = None) -> str:
        if entry_point_id != "default":
            raise UnknownEntryPointError(f"no entry point {entry_point_id!r}")
        execution_id = f"exec_{next(self._ids)}"
        emit = self.event_bus.emitter("default", execution_id)
        await emit.emit(EventType.EXECUTION_STARTED, input=input_data)
        for node in ("a", "b"):
            await emit.emit(EventType.NODE_STARTED, node)
            await emit.emit(EventType.NODE_COMPLETED, node)
        await emit.emit(EventType.EXECUTION_COMPLETED, output={"ok": True})
        return execution_id

    async def inject_input(self, node_id: str, content: str,
                           execution_id: str | None = None) -> bool:
        self.injected.append((node_id, content, execution_id))
        return node_id == "ask"

    def get_stats(self) -> dict[str, Any]:
        return {"published": self.event_bus.stats().published}

    def list_sessions(self, status: str | None = None) -> list[dict[str, Any]]:
        return [{"session_id": "s2"}, {"session_id": "s1"}]  # oldest first

    def get_entry_points(self) -> list[Any]:
        from hive_actors.graph.spec import EntryPointSpec

        return [EntryPointSpec(id="default", entry_node="a")]


async def run_bus(nursery: trio.Nursery) -> EventBus:
    bus = EventBus()
    await nursery.start(bus.run)
    return bus


# -- a small real agent: a client-facing intake node, then a worker -------------------------


def interview_graph() -> Any:
    """intake (client-facing: asks a question, waits for the answer) -> work."""
    from hive_actors.graph.spec import EdgeSpec, GraphSpec, NodeSpec

    return GraphSpec(
        id="interview", entry_node="intake",
        nodes=(NodeSpec(id="intake", client_facing=True, output_keys=("topic",)),
               NodeSpec(id="work", input_keys=("topic",), output_keys=("answer",))),
        edges=(EdgeSpec(id="intake_to_work", source="intake", target="work"),),
        terminal_nodes=("work",),
    )


def interview_llm() -> Any:
    """Per execution (one at a time): intake asks "Which topic?", then sets its output once
    answered; autopilot does the rest."""
    from hive_actors.llm.scripted import Reply, ScriptedLLM, call

    turns = [Reply("Which topic shall I research?"),
             Reply("Noted.", [call("set_output", key="topic", value="bees")])]
    return ScriptedLLM({"intake": turns * 20}, autopilot=True)


def chatty_graph() -> Any:
    """One internal node whose single turn streams many text deltas."""
    from hive_actors.graph.spec import GraphSpec, NodeSpec

    return GraphSpec(id="chatty", entry_node="work",
                     nodes=(NodeSpec(id="work", output_keys=("answer",)),),
                     terminal_nodes=("work",))


def chatty_llm(executions: int, deltas: int) -> Any:
    """Each execution streams ``deltas`` one-character text deltas, then sets its output."""
    from hive_actors.llm.scripted import Reply, ScriptedLLM, call

    reply = Reply("x" * deltas, [call("set_output", key="answer", value="ok")])
    return ScriptedLLM({"work": [reply] * executions}, chunk_size=1)
