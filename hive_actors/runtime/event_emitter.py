"""BusEmitter: the :class:`~hive_actors.runtime.events.EventSink` of one execution on an EventBus.

It numbers the execution's events (``seq`` 1, 2, 3, ...) and publishes them straight through the
bus's internals (no extra call layer per event). Get one with ``EventBus.emitter(...)``.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from hive_actors.events import AgentEvent, EventType

if TYPE_CHECKING:
    from hive_actors.runtime.event_bus import EventBus

__all__ = ["BusEmitter"]

_now = datetime.datetime.now
_UTC = datetime.timezone.utc


class BusEmitter:
    """Publishes one execution's events with ``seq`` 1, 2, 3, ... in publish order."""

    def __init__(self, bus: EventBus, stream_id: str, execution_id: str) -> None:
        self.bus = bus
        self.stream_id = stream_id
        self.execution_id = execution_id
        self._seq = 0

    def may_wait(self) -> bool:
        """Whether :meth:`emit` could wait now (only for a lossless subscription); when False
        it publishes without yielding."""
        return bool(self.bus._lossless) and not self.bus._closed

    async def emit(self, type: EventType, node_id: str | None = None, **data: Any) -> None:
        """Build the event and publish it (waits only for full lossless subscribers)."""
        bus = self.bus
        subs = None
        if bus._lossless:  # only lossless subscriptions can make a publisher wait
            subs = await bus._wait_for_room(type, self.stream_id, self.execution_id, node_id)
        # seq is taken right before publishing, with no await in between: seq order is
        # publish order even when several tasks of one execution emit concurrently.
        seq = self._seq = self._seq + 1
        bus._publish(AgentEvent(type, self.stream_id, self.execution_id, node_id, data,
                                _now(_UTC), seq), None, subs)

    def emit_nowait(self, type: EventType, node_id: str | None = None, **data: Any) -> int:
        """Like :meth:`emit`, never blocking (see :meth:`EventBus.publish_nowait`)."""
        seq = self._seq = self._seq + 1
        return self.bus._publish(
            AgentEvent(type, self.stream_id, self.execution_id, node_id, data, _now(_UTC), seq),
            None,
        )
