"""EventHistory: what an EventBus has seen: its retained history, replay and counters.

The bus keeps published events in a bounded ``deque``; offsets are contiguous, so the oldest
retained event has offset ``next_offset - len(history)``. :class:`EventHistory` is a base class
of :class:`~hive_actors.runtime.event_bus.EventBus` (not a separate object), so publishing
appends to the deque directly with no extra call per event.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable

import attrs

from hive_actors.runtime.event_subscription import (
    Subscription,
    SubscriptionStats,
    TypeSpec,
    normalize_event_types,
)
from hive_actors.events import AgentEvent

__all__ = ["BusStats", "EventHistory"]


@attrs.frozen
class BusStats:
    published: int
    dropped: int  # total, including subscriptions since removed
    handler_errors: int
    history_size: int
    next_offset: int
    subscriptions: dict[str, SubscriptionStats]


class EventHistory:
    """History reading, replay and stats of an :class:`EventBus` (state is set by the bus)."""

    _history: collections.deque[AgentEvent]
    _next_offset: int
    _published: int
    _dropped_gone: int
    _handler_errors: int
    _subs: dict[str, Subscription]

    @property
    def next_offset(self) -> int:
        """The offset the next published event will get (pass it to ``since=`` to miss none)."""
        return self._next_offset

    def _history_items(self, since: int) -> Iterable[tuple[int, AgentEvent]]:
        history = self._history
        first = self._next_offset - len(history)
        skip = max(0, since - first)
        return zip(itertools.count(first + skip), itertools.islice(history, skip, None))

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
                if len(sub.buffer) >= sub.capacity and not sub.make_room():
                    continue
                sub.buffer.append(item)
