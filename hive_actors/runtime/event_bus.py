"""EventBus: the actor that fans events out to subscribers without letting them slow publishers.

Every published event gets a bus-wide offset (1, 2, 3, ...); an event of a type the history
keeps (``history_types``; None = all) goes into a bounded history of ``(offset, event)`` pairs
(``deque(maxlen=...)``: O(1) trimming). Each subscription owns a
bounded buffer (a `DropOldest`). A lossy subscription drops its oldest buffered events when full
and later receives one ``EVENTS_DROPPED`` marker (``data={"count": n, "subscription_id": id}``)
before its next real event; a lossless one makes :meth:`EventBus.publish` wait for room instead.
Handler subscriptions are drained by their own delivery task, a child of :meth:`EventBus.run`, so
a slow, blocked or raising handler never holds up publishers or other subscribers, and no delivery
task outlives the bus. One buffer per subscription, drained in order, means every subscriber sees
the events of an execution in publish order.

Matching: subscriptions are indexed by their execution filter; lookups are cached per
``(type, stream_id, node_id)`` (and per execution for executions with subscriptions of their
own) and the caches are dropped whenever a subscription comes or goes.

Each execution publishes through its `BusEmitter` (``EventBus.emitter(...)``), which numbers its
events (``seq`` 1, 2, 3, ...) and calls `EventBus.wait_for_room` (only while a lossless
subscription exists) and `EventBus.publish_nowait` directly: one call per event.

Laziness: an emitter builds an event only when :meth:`EventBus.wants` says someone will see it:
a subscription whose type and stream filters could match (its execution filter is checked too),
or the history keeping that type. The answer is cached per ``(type, stream_id)`` and the cache
is dropped whenever a subscription comes or goes or the history widens, so a subscriber never
misses an event of its filter published after ``subscribe`` returned. ``seq`` numbers the
events built for an execution (publishers may ask `BusEmitter.wants` first and skip one).

Events made by the bus itself (``EVENTS_DROPPED`` markers, ``HANDLER_FAILED``) have ``seq == 0``:
they are not part of an execution's numbered sequence. Only the bus and a subscription's one
consumer touch a `Subscription`.
"""

from __future__ import annotations

import bisect
import collections
import datetime
import inspect
import itertools
import logging
import math
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from hive_actors.dropping import DropOldest
from hive_actors.errors import HiveActorsError, RuntimeStateError
from hive_actors.events import AgentEvent, EventSink, EventType

__all__ = [
    "AgentEvent",
    "BusEmitter",
    "BusStats",
    "EventBus",
    "EventSink",
    "EventType",
    "EventWaitTimeout",
    "Handler",
    "LIFECYCLE_EVENTS",
    "Subscription",
    "SubscriptionStats",
    "TypeSpec",
    "UnknownEventTypeError",
    "normalize_event_types",
    "open_event_bus",
]

log = logging.getLogger(__name__)

Handler = Callable[[AgentEvent], Any]
TypeSpec = EventType | str | Iterable[EventType | str] | None

# Match-cache bounds: distinct execution ids / (type, stream, node) keys kept before the
# cache is dropped.
_CACHE_EXECUTIONS = 1024
_CACHE_KEYS = 4096
# (type, stream_id, node_id) of an event: what the match caches are keyed by
_CacheKey = tuple[EventType, str, str | None]
# who wants events of one (type, stream): None = any execution, else these execution ids
_Wanted = frozenset[str] | None
_UNCACHED: frozenset[str] = frozenset()  # a distinct object: "not looked up yet"

# What a runtime's bus keeps for replay by default: the rare events that tell what happened to
# executions and actors, not the per-node ones (see RuntimeConfig.event_history).
LIFECYCLE_EVENTS = frozenset({
    EventType.EXECUTION_STARTED, EventType.EXECUTION_COMPLETED, EventType.EXECUTION_FAILED,
    EventType.EXECUTION_PAUSED, EventType.EXECUTION_RESUMED, EventType.EXECUTION_CANCELLED,
    EventType.CLIENT_INPUT_REQUESTED, EventType.CLIENT_INPUT_RECEIVED, EventType.GOAL_PROGRESS,
    EventType.CONSTRAINT_VIOLATION, EventType.WEBHOOK_RECEIVED, EventType.ACTOR_CRASHED,
    EventType.HANDLER_FAILED, EventType.TOOL_SERVER_WARNING, EventType.TOOLS_CHANGED,
})

_now = datetime.datetime.now
_UTC = datetime.timezone.utc

def _offset_of(item: tuple[int, AgentEvent]) -> int:
    return item[0]


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
        # full: drop the oldest (the publisher does that inline, see EventBus.publish_nowait)
        self.drops_oldest = not lossless and not first_only
        self.handler = handler
        self.buffer: DropOldest[tuple[int, AgentEvent]] = DropOldest(capacity)
        self.waiting = False  # the consumer is parked on its lot
        self.closed = False
        self.discarded = False  # closed with its buffer thrown away: deliver nothing more
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

    def overflow(self, item: tuple[int, AgentEvent]) -> None:
        """Take ``item`` into a full buffer: a ``wait_for`` keeps its first match, a lossless
        subscription grows past its bound, a lossy one drops its oldest item (counted)."""
        if self.first_only:
            return
        if self.lossless:
            self.overfilled += 1
            self.buffer.append(item)
            return
        buffer = self.buffer  # full: drop its oldest (push() without the call)
        buffer.popleft()
        buffer.append(item)
        self.pending_dropped += 1
        self.dropped += 1

    def wake(self) -> None:
        # once woken it is no longer waiting: later publishes before it runs skip this call
        self.waiting = False
        self._lot.unpark()

    async def wait_for_room(self) -> None:
        """Park until the consumer takes an item or the subscription closes."""
        await self._space_lot.park()

    def close(self, *, discard: bool) -> None:
        """No more items will come; with ``discard`` the buffered ones are thrown away too.
        Cancels a running handler delivery task when discarding."""
        self.closed = True
        if discard:
            self.discarded = True
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

    def take_all(self) -> list[AgentEvent]:
        """Every buffered event (an EVENTS_DROPPED marker first if events were dropped),
        removed from the buffer: one call per wake-up of a handler's delivery task."""
        events = [self._marker()] if self.pending_dropped else []
        buffer = self.buffer
        if buffer:
            self.last_offset = buffer[-1][0]
            events.extend([event for _, event in buffer])
            buffer.clear()
            if self.lossless:
                self._space_lot.unpark_all()
        return events

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


@attrs.frozen
class BusStats:
    published: int
    dropped: int  # total, including subscriptions since removed
    handler_errors: int
    history_size: int
    next_offset: int
    subscriptions: dict[str, SubscriptionStats]


class EventWaitTimeout(HiveActorsError, trio.TooSlowError):
    """:meth:`EventBus.wait_for` saw no matching event in time (also a ``trio.TooSlowError``)."""


class EventBus:
    """Fans events out to subscriptions; run it with ``await nursery.start(bus.run)``.

    ``max_history`` bounds the replayable history and ``history_types`` says which event types
    it keeps (None = every type; :meth:`retain_history` widens it later);
    ``default_buffer_size`` is each subscription's buffer unless it asks for another.
    """

    def __init__(self, max_history: int = 10_000, default_buffer_size: int = 1_000, *,
                 history_types: TypeSpec = None) -> None:
        if max_history < 0 or default_buffer_size < 1:
            raise ValueError("EventBus: max_history must be >= 0 and default_buffer_size >= 1")
        self.default_buffer_size = default_buffer_size
        self._history: collections.deque[tuple[int, AgentEvent]] = collections.deque(
            maxlen=max_history)
        self._history_types = (normalize_event_types(history_types) if max_history
                               else frozenset[EventType]())
        # (type, stream_id) -> who may see such events; dropped when subscriptions change
        self._wanted: dict[tuple[EventType, str], _Wanted] = {}
        self._next_offset = 1
        self._published = 0
        self._dropped_gone = 0  # drops counted by subscriptions already removed
        self._handler_errors = 0
        self._ids = itertools.count(1)
        self._subs: dict[str, Subscription] = {}
        # Subscriptions indexed by their execution filter (None = any execution).
        self._by_exec: dict[str | None, list[Subscription]] = {None: []}
        # (type, stream_id, node_id) -> subscriptions of any execution that match
        self._any_cache: dict[_CacheKey, tuple[Subscription, ...]] = {}
        # execution_id -> {(type, stream_id, node_id): matching subs}, only for executions
        # that have subscriptions of their own
        self._cache: dict[str, dict[_CacheKey, tuple[Subscription, ...]]] = {}
        # live lossless subscriptions: when 0, publishing never waits (read by BusEmitter)
        self.lossless_subscriptions = 0
        self._emitters: weakref.WeakValueDictionary[tuple[str, str], BusEmitter] = (
            weakref.WeakValueDictionary()
        )
        # Handler delivery tasks: a publish from one of them never waits for room, so handlers
        # that publish (event triggers re-entering the runtime) cannot deadlock the bus.
        self._delivery_tasks: set[trio.lowlevel.Task] = set()
        self._nursery: trio.Nursery | None = None
        self._cancel_scope: trio.CancelScope | None = None
        self._started = False
        self._closed = False

    # ---- lifecycle -------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[EventBus] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the bus until cancelled (or :meth:`stop`); handler delivery tasks are its children.

        Raises RuntimeStateError when run twice. On exit every subscription is closed:
        iterators end once drained, waiters raise, publishes only record history.
        """
        if self._started:
            raise RuntimeStateError("EventBus.run() called twice; a bus runs once")
        self._started = True
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._cancel_scope = nursery.cancel_scope
                for sub in self._subs.values():
                    if sub.handler is not None:
                        nursery.start_soon(self._deliver, sub)
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            self._closed = True
            self._nursery = None
            for sub in list(self._subs.values()):
                self._remove(sub, discard=False)

    def stop(self) -> None:
        """Ask :meth:`run` to end (cancels every delivery task). Idempotent."""
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def has_run(self) -> bool:
        """Whether :meth:`run` was ever called (a bus runs once)."""
        return self._started

    # ---- publishing (hot path) --------------------------------------------------------------

    def publish_nowait(self, event: AgentEvent, matched: tuple[Subscription, ...] | None = None,
                       exclude: Subscription | None = None) -> int:
        """Publish without ever blocking; returns the event's offset.

        A full lossy buffer drops its oldest event; a full lossless one grows past its bound
        (counted as ``overfilled``) rather than lose the event. ``matched``: what
        :meth:`wait_for_room` returned for this event, with no await since (saves a second
        lookup); ``exclude``: a subscription that must not get the event.
        """
        offset = self._next_offset
        self._next_offset = offset + 1
        self._published += 1
        item = (offset, event)
        kept = self._history_types
        if kept is None or event.type in kept:
            self._history.append(item)
        if self._closed:
            return offset
        subs = matched
        if subs is None:
            subs = self._match(event.type, event.stream_id, event.execution_id, event.node_id)
        if not subs:
            return offset
        for sub in subs:
            if sub is exclude:
                continue
            buf = sub.buffer
            if len(buf) < sub.capacity:
                buf.append(item)
            elif sub.drops_oldest:  # overflow()'s lossy case, without the call per drop
                buf.popleft()
                buf.append(item)
                sub.pending_dropped += 1
                sub.dropped += 1
            else:
                sub.overflow(item)
            if sub.waiting:
                sub.wake()
        return offset

    async def publish(self, event: AgentEvent) -> int:
        """Publish, first waiting for room in full *lossless* matching subscriptions.

        Returns without yielding when nothing is full, so it is safe in cleanup code under a
        cancelled scope. Inside a handler (or once the bus is closed) it never waits.
        Raises trio.Cancelled only if cancelled while waiting for room.
        """
        subs = None
        if self.lossless_subscriptions:
            subs = await self.wait_for_room(event.type, event.stream_id, event.execution_id,
                                            event.node_id)
        return self.publish_nowait(event, subs)

    async def wait_for_room(self, type: EventType, stream_id: str, execution_id: str,
                            node_id: str | None) -> tuple[Subscription, ...]:
        """Wait until no lossless subscription matching these fields is full; returns the
        matching subscriptions (looked up after the last wait) for :meth:`publish_nowait`.
        Never waits inside a handler delivery task or once the bus is closed."""
        while True:
            subs = self._match(type, stream_id, execution_id, node_id)
            if not self.lossless_subscriptions or self._closed:
                return subs
            full = next((s for s in subs if s.lossless and len(s.buffer) >= s.capacity), None)
            if full is None or trio.lowlevel.current_task() in self._delivery_tasks:
                return subs
            await full.wait_for_room()

    def wants(self, type: EventType, stream_id: str, execution_id: str) -> bool:
        """Whether an event of ``type`` from this execution could be seen by anyone: a live
        subscription (its node filter is not checked: that is for publish) or the history.
        Cached per ``(type, stream_id)``; every subscribe/unsubscribe drops the cache."""
        who = self._wanted.get((type, stream_id), _UNCACHED)
        if who is _UNCACHED:
            who = self._who_wants(type, stream_id)
        return who is None or execution_id in who

    def _who_wants(self, type: EventType, stream_id: str) -> _Wanted:
        kept = self._history_types
        who: _Wanted
        if kept is None or type in kept:
            who = None
        elif any(s.types is None or type in s.types for s in self._by_exec[None]
                 if s.stream_id is None or s.stream_id == stream_id):
            who = None
        else:
            who = frozenset(
                execution_id for execution_id, subs in self._by_exec.items()
                if execution_id is not None and any(
                    (s.types is None or type in s.types)
                    and (s.stream_id is None or s.stream_id == stream_id) for s in subs)
            )
        if len(self._wanted) >= _CACHE_KEYS:
            self._wanted.clear()
        self._wanted[(type, stream_id)] = who
        return who

    def retain_history(self, event_types: TypeSpec) -> None:
        """Keep events of these types in the history too, from now on (None = every type).
        Raises UnknownEventTypeError for an unknown type name."""
        types = normalize_event_types(event_types)
        if self._history_types is None or self._history.maxlen == 0:
            return
        self._history_types = None if types is None else self._history_types | types
        self._wanted.clear()

    @property
    def history_types(self) -> frozenset[EventType] | None:
        """The event types the history keeps (None = every type)."""
        return self._history_types

    # ---- subscriptions ----------------------------------------------------------------------

    def subscribe(self, event_types: TypeSpec, handler: Handler, *, stream_id: str | None = None,
                  execution_id: str | None = None, node_id: str | None = None,
                  buffer_size: int | None = None, lossless: bool = False) -> str:
        """Call ``handler(event)`` (sync or async) for each matching event; returns the id.

        ``event_types=None`` means every type; a filter left ``None`` matches anything.
        The handler runs in the subscription's own delivery task. A handler that raises is
        reported as ``HANDLER_FAILED`` (never to itself) and keeps its subscription.
        Raises UnknownEventTypeError for an unknown type name, RuntimeStateError once closed.
        """
        sub = self._add(event_types, stream_id, execution_id, node_id, buffer_size, lossless,
                        handler=handler)
        if self._nursery is not None:
            self._nursery.start_soon(self._deliver, sub)
        return sub.id

    def unsubscribe(self, sub_id: str) -> bool:
        """Stop delivery to ``sub_id`` at once (buffered events are discarded, a running
        handler is cancelled). Returns False if there is no such subscription."""
        sub = self._subs.get(sub_id)
        if sub is None:
            return False
        self._remove(sub, discard=True)
        return True

    @asynccontextmanager
    async def open_subscription(self, event_types: TypeSpec = None, *,
                                stream_id: str | None = None, execution_id: str | None = None,
                                node_id: str | None = None, buffer_size: int | None = None,
                                lossless: bool = False,
                                since: int | None = None) -> AsyncIterator[Subscription]:
        """Yield a :class:`Subscription`: ``async for event in sub`` (ends when the bus stops).

        ``since`` first replays matching history from that offset (no gap between replay and
        live events). Same bounded / drop-oldest semantics as handler subscriptions.
        """
        sub = self._add(event_types, stream_id, execution_id, node_id, buffer_size, lossless)
        try:
            if since is not None:
                self._replay_into(sub, since)
            yield sub
        finally:
            self._remove(sub, discard=True)

    async def wait_for(self, event_type: EventType | str, *, timeout: float | None,
                       since: int | None = None, stream_id: str | None = None,
                       execution_id: str | None = None, node_id: str | None = None) -> AgentEvent:
        """Return the first matching event published from now on (or from offset ``since``).

        ``timeout=None`` waits forever; ``0`` only looks at what is already there (history
        since ``since``). Raises EventWaitTimeout (a trio.TooSlowError) when time runs out,
        RuntimeStateError if the bus stops first, UnknownEventTypeError for a bad type.
        """
        if timeout is not None and (timeout < 0 or math.isnan(timeout)):
            raise ValueError(f"wait_for({event_type!r}): timeout must be None or >= 0")
        sub = self._add([event_type], stream_id, execution_id, node_id, 1, False, first_only=True)
        try:
            if since is not None:
                self._replay_into(sub, since)
            if not sub.buffer and timeout != 0:
                with trio.move_on_after(math.inf if timeout is None else timeout):
                    await sub.wait_nonempty()
            if sub.buffer:
                return sub.buffer[0][1]
            if sub.closed:
                raise RuntimeStateError(f"event bus stopped while waiting for {event_type!r}")
            raise EventWaitTimeout(
                f"no {sub.describe()} event within {timeout} s"
                + (f" (history searched from offset {since})" if since is not None else "")
            )
        finally:
            self._remove(sub, discard=True)

    def has_subscribers(self, event_type: EventType | str, *, stream_id: str = "",
                        execution_id: str = "", node_id: str | None = None) -> bool:
        """Whether an event with these fields would reach at least one live subscription
        (handler, iterator or a pending :meth:`wait_for`)."""
        (etype,) = normalize_event_types([event_type])  # type: ignore[misc]
        return bool(self._match(etype, stream_id, execution_id, node_id))

    # ---- matching: which subscriptions an event reaches -----------------------------------

    def _match(self, type: EventType, stream_id: str, execution_id: str,
               node_id: str | None) -> tuple[Subscription, ...]:
        key = (type, stream_id, node_id)
        subs = self._any_cache.get(key)
        if subs is None:
            if len(self._any_cache) >= _CACHE_KEYS:
                self._any_cache.clear()
            subs = self._any_cache[key] = tuple(
                s for s in self._by_exec[None] if s.matches(type, stream_id, node_id)
            )
        if len(self._by_exec) == 1 or execution_id not in self._by_exec:
            return subs
        per_exec = self._cache.get(execution_id)
        if per_exec is None:
            if len(self._cache) >= _CACHE_EXECUTIONS:
                self._cache.clear()
            per_exec = self._cache[execution_id] = {}
        hit = per_exec.get(key)
        if hit is None:
            own = [s for s in self._by_exec[execution_id] if s.matches(type, stream_id, node_id)]
            hit = per_exec[key] = (*subs, *own)
        return hit

    def _add(self, event_types: TypeSpec, stream_id: str | None, execution_id: str | None,
             node_id: str | None, buffer_size: int | None, lossless: bool, *,
             handler: Handler | None = None, first_only: bool = False) -> Subscription:
        if self._closed:
            raise RuntimeStateError("cannot subscribe: the event bus has stopped")
        size = self.default_buffer_size if buffer_size is None else buffer_size
        if size < 1:
            raise ValueError(f"subscription buffer_size must be >= 1, got {size}")
        sub = Subscription(
            id=f"sub_{next(self._ids)}", types=normalize_event_types(event_types),
            stream_id=stream_id, execution_id=execution_id, node_id=node_id, capacity=size,
            lossless=lossless, first_only=first_only, handler=handler,
        )
        self._subs[sub.id] = sub
        self._by_exec.setdefault(execution_id, []).append(sub)
        self.lossless_subscriptions += lossless
        self._invalidate(execution_id)
        return sub

    def _remove(self, sub: Subscription, *, discard: bool) -> None:
        if self._subs.pop(sub.id, None) is None:
            return
        peers = self._by_exec[sub.execution_id]
        peers.remove(sub)
        if not peers and sub.execution_id is not None:
            del self._by_exec[sub.execution_id]
        self.lossless_subscriptions -= sub.lossless
        self._invalidate(sub.execution_id)
        self._dropped_gone += sub.dropped
        sub.close(discard=discard)

    def _invalidate(self, execution_id: str | None) -> None:
        self._wanted.clear()
        if execution_id is None:
            self._any_cache.clear()
            self._cache.clear()
        else:
            self._cache.pop(execution_id, None)

    # ---- history, replay, stats ------------------------------------------------------------

    @property
    def next_offset(self) -> int:
        """The offset the next published event will get (pass it to ``since=`` to miss none)."""
        return self._next_offset

    def _history_items(self, since: int) -> Iterable[tuple[int, AgentEvent]]:
        history = self._history
        skip = bisect.bisect_left(history, since, key=_offset_of)
        return itertools.islice(history, skip, None)

    def history(self, since: int = 0, *, event_types: TypeSpec = None, stream_id: str | None = None,
                execution_id: str | None = None, node_id: str | None = None,
                limit: int | None = None) -> list[tuple[int, AgentEvent]]:
        """Retained ``(offset, event)`` pairs with offset >= ``since``, oldest first, filtered;
        ``limit`` keeps the oldest ``limit`` of them."""
        types = normalize_event_types(event_types)
        out = []
        for item in self._history_items(since):
            e = item[1]
            if ((types is None or e.type in types)
                    and (stream_id is None or e.stream_id == stream_id)
                    and (execution_id is None or e.execution_id == execution_id)
                    and (node_id is None or e.node_id == node_id)):
                out.append(item)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def stats(self) -> BusStats:
        subs = {sid: s.stats() for sid, s in self._subs.items()}
        return BusStats(
            published=self._published,
            dropped=self._dropped_gone + sum(s.dropped for s in self._subs.values()),
            handler_errors=self._handler_errors, history_size=len(self._history),
            next_offset=self._next_offset, subscriptions=subs,
        )

    def _replay_into(self, sub: Subscription, since: int) -> None:
        for item in self._history_items(since):
            _, event = item
            if sub.matches(event.type, event.stream_id, event.node_id) and (
                sub.execution_id is None or sub.execution_id == event.execution_id
            ):
                if len(sub.buffer) < sub.capacity:
                    sub.buffer.append(item)
                else:
                    sub.overflow(item)

    # ---- delivery -----------------------------------------------------------------------------

    async def _deliver(self, sub: Subscription) -> None:
        handler = sub.handler
        assert handler is not None
        task = trio.lowlevel.current_task()
        self._delivery_tasks.add(task)
        buffer = sub.buffer
        try:
            with sub.cancel_scope:
                while True:
                    await sub.wait_nonempty()
                    if not buffer:
                        return  # closed and drained
                    # Deliver everything buffered at wake-up in one go (not one event per
                    # scheduler pass); what handlers publish meanwhile waits for the next round.
                    for event in sub.take_all():
                        if sub.discarded:  # unsubscribed meanwhile (by a sync handler too)
                            return
                        try:
                            result = handler(event)
                            if result is not None and inspect.isawaitable(result):
                                await result
                        except Exception as exc:  # isolate the handler; the bus keeps running
                            self._report_failure(sub, event, exc)
                    if buffer:  # more arrived meanwhile: let others run before the next round
                        await trio.lowlevel.checkpoint()
        finally:
            self._delivery_tasks.discard(task)

    def _report_failure(self, sub: Subscription, event: AgentEvent, exc: Exception) -> None:
        self._handler_errors += 1
        sub.errors += 1
        log.warning("event handler of %s failed on %s", sub.id, event.type.value, exc_info=exc)
        if event.type is EventType.HANDLER_FAILED:
            return  # never report failures about failure reports: no ping-pong between handlers
        self.publish_nowait(
            AgentEvent(
                type=EventType.HANDLER_FAILED, stream_id=event.stream_id,
                execution_id=event.execution_id, node_id=event.node_id,
                data={"subscription_id": sub.id, "event_type": event.type.value,
                      "error_type": type(exc).__name__, "error": str(exc)},
            ),
            exclude=sub,
        )

    # ---- emitters -----------------------------------------------------------------------------

    def emitter(self, stream_id: str, execution_id: str) -> BusEmitter:
        """The :class:`EventSink` of one execution; the same object while anyone holds it, so
        the stream and the executor share one sequence."""
        key = (stream_id, execution_id)
        em = self._emitters.get(key)
        if em is None:
            em = self._emitters[key] = BusEmitter(self, stream_id, execution_id)
        return em


class BusEmitter:
    """Publishes one execution's events with ``seq`` 1, 2, 3, ... in publish order."""

    def __init__(self, bus: EventBus, stream_id: str, execution_id: str) -> None:
        self.bus = bus
        self.stream_id = stream_id
        self.execution_id = execution_id
        self._seq = 0

    def wants(self, type: EventType) -> bool:
        """Whether an event of ``type`` from this execution would be built (someone could see
        it: :meth:`EventBus.wants`)."""
        return self.bus.wants(type, self.stream_id, self.execution_id)

    def may_wait(self) -> bool:
        """Whether :meth:`emit` could wait now (only for a lossless subscription); when False
        it publishes without yielding."""
        return bool(self.bus.lossless_subscriptions) and not self.bus.closed

    async def emit(self, type: EventType, node_id: str | None = None, **data: Any) -> None:
        """Build the event and publish it (waits only for full lossless subscribers); when
        nobody could see it (:meth:`EventBus.wants`), drop it unbuilt."""
        bus = self.bus
        if not bus.wants(type, self.stream_id, self.execution_id):
            return
        subs = None
        if bus.lossless_subscriptions:  # only lossless subscriptions make a publisher wait
            subs = await bus.wait_for_room(type, self.stream_id, self.execution_id, node_id)
        # seq is taken right before publishing, with no await in between: seq order is
        # publish order even when several tasks of one execution emit concurrently.
        seq = self._seq = self._seq + 1
        bus.publish_nowait(AgentEvent(type, self.stream_id, self.execution_id, node_id, data,
                                      _now(_UTC), seq), subs)

    def emit_nowait(self, type: EventType, node_id: str | None = None, **data: Any) -> int:
        """Like :meth:`emit`, never blocking (see :meth:`EventBus.publish_nowait`). Returns
        the event's offset, or 0 when nobody could see it (not built)."""
        if not self.bus.wants(type, self.stream_id, self.execution_id):
            return 0
        seq = self._seq = self._seq + 1
        return self.bus.publish_nowait(
            AgentEvent(type, self.stream_id, self.execution_id, node_id, data, _now(_UTC), seq)
        )


@asynccontextmanager
async def open_event_bus(max_history: int = 10_000,
                         default_buffer_size: int = 1_000) -> AsyncIterator[EventBus]:
    """Run an :class:`EventBus` for the duration of the block; stops it (and every delivery
    task) on exit."""
    bus = EventBus(max_history=max_history, default_buffer_size=default_buffer_size)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        try:
            yield bus
        finally:
            bus.stop()
