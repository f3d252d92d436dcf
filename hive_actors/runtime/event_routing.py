"""SubscriptionIndex: which subscriptions of an EventBus an event reaches.

Subscriptions are indexed by their execution filter; lookups are cached per
``(type, stream_id, node_id)`` (and per execution for executions with subscriptions of their
own) and the caches are dropped whenever a subscription comes or goes. A base class of
:class:`~hive_actors.runtime.event_bus.EventBus` (not a separate object), so matching costs
no extra call per event; the bus sets up the state in its ``__init__``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from hive_actors.errors import RuntimeStateError
from hive_actors.runtime.event_subscription import (
    Subscription,
    TypeSpec,
    normalize_event_types,
)
from hive_actors.events import AgentEvent, EventType

__all__ = ["SubscriptionIndex"]

Handler = Callable[[AgentEvent], Any]

# Match-cache bounds: distinct execution ids / (type, stream, node) keys kept before the
# cache is dropped.
_CACHE_EXECUTIONS = 1024
_CACHE_KEYS = 4096


class SubscriptionIndex:
    """Adding, removing and matching the subscriptions of an :class:`EventBus`."""

    default_buffer_size: int
    _ids: itertools.count
    _subs: dict[str, Subscription]
    _by_exec: dict[str | None, list[Subscription]]
    _any_cache: dict[tuple, tuple[Subscription, ...]]
    _cache: dict[str, dict[tuple, tuple[Subscription, ...]]]
    _lossless: int
    _dropped_gone: int
    _closed: bool

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
        self._lossless += lossless
        self._invalidate(execution_id)
        return sub

    def _remove(self, sub: Subscription, *, discard: bool) -> None:
        if self._subs.pop(sub.id, None) is None:
            return
        peers = self._by_exec[sub.execution_id]
        peers.remove(sub)
        if not peers and sub.execution_id is not None:
            del self._by_exec[sub.execution_id]
        self._lossless -= sub.lossless
        self._invalidate(sub.execution_id)
        self._dropped_gone += sub.dropped
        sub.close(discard=discard)

    def _invalidate(self, execution_id: str | None) -> None:
        if execution_id is None:
            self._any_cache.clear()
            self._cache.clear()
        else:
            self._cache.pop(execution_id, None)
