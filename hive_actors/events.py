"""Event records and the publisher interface the executor emits through.

``EventType`` and ``AgentEvent`` are re-exported by :mod:`hive_actors.runtime.event_bus`.
"""

from __future__ import annotations

import datetime as _dt
import enum
from typing import Any, Protocol

import attrs


class EventType(str, enum.Enum):
    EXECUTION_STARTED = "execution_started"
    EXECUTION_COMPLETED = "execution_completed"
    EXECUTION_FAILED = "execution_failed"
    EXECUTION_PAUSED = "execution_paused"
    EXECUTION_RESUMED = "execution_resumed"
    EXECUTION_CANCELLED = "execution_cancelled"
    NODE_STARTED = "node_started"
    NODE_COMPLETED = "node_completed"
    NODE_FAILED = "node_failed"
    NODE_RETRY = "node_retry"
    EDGE_TRAVERSED = "edge_traversed"
    TOOL_CALL_STARTED = "tool_call_started"
    TOOL_CALL_COMPLETED = "tool_call_completed"
    LLM_TEXT_DELTA = "llm_text_delta"
    LLM_TURN_COMPLETED = "llm_turn_completed"
    CLIENT_OUTPUT_DELTA = "client_output_delta"
    CLIENT_INPUT_REQUESTED = "client_input_requested"
    CLIENT_INPUT_RECEIVED = "client_input_received"
    OUTPUT_KEY_SET = "output_key_set"
    CHECKPOINT_SAVED = "checkpoint_saved"
    STATE_CHANGED = "state_changed"
    GOAL_PROGRESS = "goal_progress"
    CONSTRAINT_VIOLATION = "constraint_violation"
    WEBHOOK_RECEIVED = "webhook_received"
    EVENTS_DROPPED = "events_dropped"
    ACTOR_CRASHED = "actor_crashed"
    HANDLER_FAILED = "handler_failed"
    TOOL_SERVER_WARNING = "tool_server_warning"
    TOOLS_CHANGED = "tools_changed"


_UTC = _dt.timezone.utc
_now = _dt.datetime.now


def utcnow() -> _dt.datetime:
    return _now(_UTC)


@attrs.frozen
class AgentEvent:
    """One thing that happened. ``seq`` counts events per execution from 1."""

    type: EventType
    stream_id: str = ""
    execution_id: str = ""
    node_id: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict)  # the event's JSON payload: any JSON values
    timestamp: _dt.datetime = attrs.field(factory=utcnow)
    seq: int = 0


class EventSink(Protocol):
    """What the executor emits through: bound to one execution (stream and execution ids).

    ``wants(type)`` False means an event of that type would reach nobody now: the caller may
    skip building its data and calling ``emit`` (which would drop it anyway). No await may
    come between asking and emitting.
    """

    def wants(self, type: EventType) -> bool: ...

    async def emit(self, type: EventType, node_id: str | None = None, **data: Any) -> None: ...


class NullSink:
    """Emits nothing: the executor's default when no bus is attached."""

    def wants(self, type: EventType) -> bool:
        return False

    async def emit(self, type: EventType, node_id: str | None = None, **data: Any) -> None:
        return None


class ListSink:
    """Keeps every event in a list: handy in tests and for a bare GraphExecutor."""

    def __init__(self, stream_id: str = "", execution_id: str = "") -> None:
        self.stream_id = stream_id
        self.execution_id = execution_id
        self.events: list[AgentEvent] = []

    def wants(self, type: EventType) -> bool:
        return True

    async def emit(self, type: EventType, node_id: str | None = None, **data: Any) -> None:
        self.events.append(
            AgentEvent(
                type=type,
                stream_id=self.stream_id,
                execution_id=self.execution_id,
                node_id=node_id,
                data=data,
                seq=len(self.events) + 1,
            )
        )

    def types(self) -> list[EventType]:
        return [e.type for e in self.events]
