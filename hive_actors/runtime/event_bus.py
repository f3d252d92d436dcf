"""EventBus: the actor that fans events out to subscribers without letting them slow publishers.

Every published event gets a bus-wide offset (1, 2, 3, ...) and goes into a bounded history
(``deque(maxlen=...)``: O(1) trimming; offsets are contiguous, so they are not stored). Each subscription owns a bounded buffer. A lossy
subscription drops its oldest buffered events when full and later receives one
``EVENTS_DROPPED`` marker (``data={"count": n, "subscription_id": id}``) before its next real
event; a lossless one makes :meth:`EventBus.publish` wait for room instead. Handler
subscriptions are drained by their own delivery task, a child of :meth:`EventBus.run`, so a slow,
blocked or raising handler never holds up publishers or other subscribers, and no delivery task
outlives the bus. One buffer per subscription, drained in order, means every subscriber sees the
events of an execution in publish order.

Events made by the bus itself (``EVENTS_DROPPED`` markers, ``HANDLER_FAILED``) have ``seq == 0``:
they are not part of an execution's numbered sequence.

Subscription matching is in `event_routing.py`, history, replay and stats in
`event_history.py` (both base classes of EventBus: no extra call per event), and each
execution's emitter in `event_emitter.py`.
"""

from __future__ import annotations

import collections
import inspect
import itertools
import logging
import math
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from hive_actors.errors import HiveActorsError, RuntimeStateError
from hive_actors.runtime.event_emitter import BusEmitter
from hive_actors.runtime.event_history import BusStats, EventHistory
from hive_actors.runtime.event_routing import Handler, SubscriptionIndex
from hive_actors.runtime.event_subscription import (
    Subscription,
    SubscriptionStats,
    TypeSpec,
    UnknownEventTypeError,
    normalize_event_types,
)
from hive_actors.events import AgentEvent, EventSink, EventType

__all__ = [
    "AgentEvent",
    "BusEmitter",
    "BusStats",
    "EventBus",
    "EventSink",
    "EventType",
    "EventWaitTimeout",
    "Subscription",
    "SubscriptionStats",
    "UnknownEventTypeError",
    "open_event_bus",
]

log = logging.getLogger(__name__)


class EventWaitTimeout(HiveActorsError, trio.TooSlowError):
    """:meth:`EventBus.wait_for` saw no matching event in time (also a ``trio.TooSlowError``)."""


class EventBus(EventHistory, SubscriptionIndex):
    """Fans events out to subscriptions; run it with ``await nursery.start(bus.run)``.

    ``max_history`` bounds the replayable history; ``default_buffer_size`` is each
    subscription's buffer unless it asks for another.
    """

    def __init__(self, max_history: int = 10_000, default_buffer_size: int = 1_000) -> None:
        if max_history < 0 or default_buffer_size < 1:
            raise ValueError("EventBus: max_history must be >= 0 and default_buffer_size >= 1")
        self.default_buffer_size = default_buffer_size
        # Events only: offsets are contiguous, so the newest has offset next_offset - 1.
        self._history: collections.deque[AgentEvent] = collections.deque(maxlen=max_history)
        self._next_offset = 1
        self._published = 0
        self._dropped_gone = 0  # drops counted by subscriptions already removed
        self._handler_errors = 0
        self._ids = itertools.count(1)
        self._subs: dict[str, Subscription] = {}
        # Subscriptions indexed by their execution filter (None = any execution).
        self._by_exec: dict[str | None, list[Subscription]] = {None: []}
        # (type, stream_id, node_id) -> subscriptions of any execution that match
        self._any_cache: dict[tuple, tuple[Subscription, ...]] = {}
        # execution_id -> {(type, stream_id, node_id): matching subs}, only for executions
        # that have subscriptions of their own
        self._cache: dict[str, dict[tuple, tuple[Subscription, ...]]] = {}
        self._lossless = 0  # live lossless subscriptions: when 0, publishing never waits
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

    # ---- publishing (hot path) --------------------------------------------------------------

    def publish_nowait(self, event: AgentEvent) -> int:
        """Publish without ever blocking; returns the event's offset.

        A full lossy buffer drops its oldest event; a full lossless one grows past its bound
        (counted as ``overfilled``) rather than lose the event.
        """
        return self._publish(event, None)

    async def publish(self, event: AgentEvent) -> int:
        """Publish, first waiting for room in full *lossless* matching subscriptions.

        Returns without yielding when nothing is full, so it is safe in cleanup code under a
        cancelled scope. Inside a handler (or once the bus is closed) it never waits.
        Raises trio.Cancelled only if cancelled while waiting for room.
        """
        subs = None
        if self._lossless:
            subs = await self._wait_for_room(event.type, event.stream_id, event.execution_id,
                                             event.node_id)
        return self._publish(event, None, subs)

    def _publish(self, event: AgentEvent, exclude: Subscription | None,
                 subs: tuple[Subscription, ...] | None = None) -> int:
        """Record ``event`` in history and append it to matching buffers (``subs`` when the
        caller already looked them up, with no await since)."""
        offset = self._next_offset
        self._next_offset = offset + 1
        self._published += 1
        self._history.append(event)
        if self._closed:
            return offset
        if subs is None:
            subs = self._match(event.type, event.stream_id, event.execution_id, event.node_id)
        if not subs:
            return offset
        item = (offset, event)
        for sub in subs:
            buf = sub.buffer
            if sub is exclude or (len(buf) >= sub.capacity and not sub.make_room()):
                continue
            buf.append(item)
            if sub.waiting:
                sub.wake()
        return offset

    async def _wait_for_room(self, type: EventType, stream_id: str, execution_id: str,
                             node_id: str | None) -> tuple[Subscription, ...]:
        """Wait until no matching lossless subscription is full; returns the matching
        subscriptions (looked up after the last wait)."""
        while True:
            subs = self._match(type, stream_id, execution_id, node_id)
            if not self._lossless or self._closed:
                return subs
            full = next((s for s in subs if s.lossless and len(s.buffer) >= s.capacity), None)
            if full is None or trio.lowlevel.current_task() in self._delivery_tasks:
                return subs
            await full.wait_for_room()

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
                    for _ in range(len(buffer)):
                        if not buffer:
                            break
                        event = sub.take()
                        try:
                            result = handler(event)
                            if inspect.isawaitable(result):
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
        self._publish(
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
