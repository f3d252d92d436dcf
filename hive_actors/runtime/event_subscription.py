"""One EventBus subscription: its filters, its bounded buffer and the receiving side.

The bus (:mod:`hive_actors.runtime.event_bus`) appends ``(offset, event)`` items to
``buffer``; the subscriber takes them out with :meth:`Subscription.receive` or ``async for``.
Only the bus and the subscription's one consumer touch a subscription.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

from hive_actors.errors import HiveActorsError
from hive_actors.events import AgentEvent, EventType

TypeSpec = EventType | str | Iterable[EventType | str] | None


class UnknownEventTypeError(HiveActorsError, ValueError):
    """A subscription or query names an event type that does not exist."""


def normalize_event_types(types: TypeSpec) -> frozenset[EventType] | None:
    """``None`` (every type) or the set of EventType members named; accepts members and their
    string values. Raises UnknownEventTypeError naming the bad value and the known ones."""
    if types is None:
        return None
    if isinstance(types, (str, EventType)):
        types = [types]
    out = set()
    for t in types:
        try:
            out.add(EventType(t))
        except ValueError:
            known = ", ".join(e.value for e in EventType)
            raise UnknownEventTypeError(
                f"unknown event type {t!r} in event filter; known types: {known}"
            ) from None
    return frozenset(out)


@attrs.frozen
class SubscriptionStats:
    event_types: tuple[str, ...] | None
    buffered: int
    capacity: int
    lossless: bool
    dropped: int  # lossy: events dropped because the buffer was full
    overfilled: int  # lossless: events appended past capacity by a non-waiting publish
    handler_errors: int


class Subscription:
    """The receiving end of a subscription: ``async for event in sub`` or ``await sub.receive()``.

    Iteration ends when the subscription is closed (unsubscribed, or the bus stopped and the
    buffer is drained). ``last_offset`` is the bus offset of the last real event received.
    """

    def __init__(self, *, id: str, types: frozenset[EventType] | None, stream_id: str | None,
                 execution_id: str | None, node_id: str | None, capacity: int, lossless: bool,
                 first_only: bool = False, handler: Callable[[AgentEvent], Any] | None = None
                 ) -> None:
        self.id = id
        self.types = types
        self.stream_id = stream_id
        self.execution_id = execution_id
        self.node_id = node_id
        self.capacity = capacity
        self.lossless = lossless
        self.first_only = first_only  # wait_for: keep the first match, ignore the rest
        self.handler = handler
        self.buffer: collections.deque[tuple[int, AgentEvent]] = collections.deque()
        self.waiting = False  # the consumer is parked on _lot
        self.closed = False
        self.pending_dropped = 0  # drops not yet reported by an EVENTS_DROPPED marker
        self.dropped = 0
        self.overfilled = 0
        self.errors = 0
        self.last_offset = 0
        self.cancel_scope = trio.CancelScope()  # the handler delivery task runs inside it
        self._lot = trio.lowlevel.ParkingLot()
        self._space_lot = trio.lowlevel.ParkingLot()

    # ---- bus side ---------------------------------------------------------------------------

    def matches(self, type: EventType, stream_id: str, node_id: str | None) -> bool:
        """Type, stream and node filters (the bus indexes execution filters itself)."""
        return (
            (self.types is None or type in self.types)
            and (self.stream_id is None or self.stream_id == stream_id)
            and (self.node_id is None or self.node_id == node_id)
        )

    def make_room(self) -> bool:
        """Called when the buffer is full; returns whether to append the new item anyway."""
        if self.first_only:
            return False
        if self.lossless:
            self.overfilled += 1
            return True
        self.buffer.popleft()
        self.pending_dropped += 1
        self.dropped += 1
        return True

    def wake(self) -> None:
        self._lot.unpark()

    async def wait_for_room(self) -> None:
        """Park until the consumer takes an item or the subscription closes."""
        await self._space_lot.park()

    def close(self, *, discard: bool) -> None:
        """No more items will come; with ``discard`` the buffered ones are thrown away too.
        Cancels a running handler delivery task when discarding."""
        self.closed = True
        if discard:
            self.buffer.clear()
            self.pending_dropped = 0
            self.cancel_scope.cancel()
        self._lot.unpark_all()
        self._space_lot.unpark_all()

    # ---- consumer side ----------------------------------------------------------------------

    async def wait_nonempty(self) -> None:
        """Park until an item is buffered or the subscription closes."""
        while not self.buffer and not self.closed:
            self.waiting = True
            try:
                await self._lot.park()
            finally:
                self.waiting = False

    async def receive_or_none(self) -> AgentEvent | None:
        """The next event (an EVENTS_DROPPED marker first if events were dropped), or None
        once closed and drained. Yields to the scheduler only when it has to wait."""
        if self.buffer:
            await trio.lowlevel.checkpoint_if_cancelled()
        else:
            await self.wait_nonempty()
            if not self.buffer:
                return None
        return self.take()

    def take(self) -> AgentEvent:
        """The next buffered event, without waiting (an EVENTS_DROPPED marker first if events
        were dropped). Raises IndexError when nothing is buffered."""
        if self.pending_dropped:
            return self._marker()
        offset, event = self.buffer.popleft()
        self.last_offset = offset
        if self.lossless and len(self.buffer) < self.capacity:
            self._space_lot.unpark_all()
        return event

    async def receive(self) -> AgentEvent:
        """The next event; raises trio.EndOfChannel once closed and drained."""
        event = await self.receive_or_none()
        if event is None:
            raise trio.EndOfChannel(f"subscription {self.id} is closed")
        return event

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> AgentEvent:
        event = await self.receive_or_none()
        if event is None:
            raise StopAsyncIteration
        return event

    def _marker(self) -> AgentEvent:
        count, self.pending_dropped = self.pending_dropped, 0
        return AgentEvent(
            type=EventType.EVENTS_DROPPED, stream_id=self.stream_id or "",
            execution_id=self.execution_id or "", node_id=self.node_id,
            data={"count": count, "subscription_id": self.id},
        )

    def stats(self) -> SubscriptionStats:
        return SubscriptionStats(
            event_types=None if self.types is None else tuple(sorted(t.value for t in self.types)),
            buffered=len(self.buffer), capacity=self.capacity, lossless=self.lossless,
            dropped=self.dropped, overfilled=self.overfilled, handler_errors=self.errors,
        )

    def describe(self) -> str:
        """Filters in words, for error messages."""
        types = "any" if self.types is None else "|".join(sorted(t.value for t in self.types))
        parts = [types] + [
            f"{k}={v!r}" for k, v in (("stream_id", self.stream_id),
                                      ("execution_id", self.execution_id),
                                      ("node_id", self.node_id)) if v is not None
        ]
        return " ".join(parts)
