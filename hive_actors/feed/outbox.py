"""One connection's outgoing queue: replies are kept, events are bounded and drop the oldest.

Events never wait: ``push_event`` is synchronous, and when the buffer is full the oldest queued
event is dropped and counted against its subscription. Before the next event goes out, the
client gets one ``events_dropped`` per subscription that lost events, so it knows where the gap
is. Replies to requests are never dropped; instead the connection stops reading the client's
requests while ``reply_capacity`` replies are waiting (backpressure on that client only).
"""

from __future__ import annotations

from collections import deque

import trio

from hive_actors.dropping import DropOldest
from hive_actors.events import AgentEvent
from hive_actors.feed.protocol import EventMessage, EventsDropped, Reply, ServerMessage


class Outbox:
    """Single consumer (the connection's writer task), any number of producers."""

    def __init__(self, event_capacity: int = 1000, reply_capacity: int = 64) -> None:
        if event_capacity < 1 or reply_capacity < 1:
            raise ValueError("outbox capacities must be >= 1")
        self.event_capacity = event_capacity
        self.reply_capacity = reply_capacity
        # (subscription, seq, event); event None marks a gap of ``seq`` events reported by the bus
        self._events: DropOldest[tuple[str, int, AgentEvent | None]] = DropOldest(event_capacity)
        self._replies: deque[Reply] = deque()
        self._dropped: dict[str, int] = {}
        self._active: set[str] = set()
        self._wakeup = trio.Event()
        self._room = trio.Event()
        self.total_dropped = 0

    # -- subscriptions ----------------------------------------------------------------------

    def activate(self, subscription: str) -> None:
        self._active.add(subscription)

    def deactivate(self, subscription: str) -> None:
        """Forget a subscription: its queued events and drop counts are discarded."""
        self._active.discard(subscription)
        self._dropped.pop(subscription, None)

    # -- producers --------------------------------------------------------------------------

    def push_event(self, subscription: str, seq: int, event: AgentEvent) -> None:
        """Queue an event; never waits. A full buffer drops its oldest event."""
        if subscription not in self._active:
            return
        self._append(subscription, seq, event)

    def push_gap(self, subscription: str, count: int) -> None:
        """Queue, in order, the news that ``count`` events were lost upstream (bus overflow)."""
        if subscription in self._active and count > 0:
            self.total_dropped += count
            self._append(subscription, count, None)

    def _append(self, subscription: str, seq: int, event: AgentEvent | None) -> None:
        dropped = self._events.push((subscription, seq, event))
        if dropped is not None:
            old_sub, old_seq, old_event = dropped
            self._count_drop(old_sub, 1 if old_event is not None else old_seq, old_event)
        self._wakeup.set()

    def _count_drop(self, subscription: str, count: int, event: AgentEvent | None) -> None:
        if subscription not in self._active:
            return
        self._dropped[subscription] = self._dropped.get(subscription, 0) + count
        if event is not None:  # a dropped gap marker was already counted
            self.total_dropped += count

    async def wait_reply_room(self) -> None:
        """Return once a reply can be queued without exceeding ``reply_capacity``."""
        while len(self._replies) >= self.reply_capacity:
            self._room = trio.Event()
            await self._room.wait()

    def push_reply(self, reply: Reply) -> None:
        """Queue a reply; it is sent before any queued event and is never dropped."""
        self._replies.append(reply)
        self._wakeup.set()

    # -- consumer ---------------------------------------------------------------------------

    def pop_ready(self) -> ServerMessage | None:
        """The next message to send, or None when nothing is queued."""
        if self._replies:
            reply = self._replies.popleft()
            self._room.set()
            return reply
        if self._dropped:
            subscription, count = next(iter(self._dropped.items()))
            del self._dropped[subscription]
            return EventsDropped(count=count, subscription=subscription)
        while self._events:
            subscription, seq, event = self._events.popleft()
            if subscription not in self._active:
                continue
            if event is None:
                return EventsDropped(count=seq, subscription=subscription)
            return EventMessage(subscription=subscription, seq=seq, event=event)
        return None

    async def next_message(self) -> ServerMessage:
        """Wait for and return the next message to send."""
        while True:
            message = self.pop_ready()
            if message is not None:
                return message
            self._wakeup = trio.Event()
            await self._wakeup.wait()

    def __len__(self) -> int:
        return len(self._replies) + len(self._events) + len(self._dropped)
