"""DropOldest: the bounded queue of a consumer that must never make its producers wait.

When it is full, `DropOldest.push` drops the oldest item to make room and returns it, so the
owner can count what was lost and tell its consumer (the event bus's subscriptions send one
``EVENTS_DROPPED`` marker, the feed's outbox one ``events_dropped`` message). It is a
``collections.deque``: ``append``, ``popleft``, ``len`` and truth tests stay C calls, so a hot
path may check ``len(q) < q.capacity`` and ``append`` inline and call `push` only when full.
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

__all__ = ["DropOldest"]

T = TypeVar("T")


class DropOldest(collections.deque[T], Generic[T]):
    """A FIFO of at most ``capacity`` items (``append`` may overfill it on purpose)."""

    __slots__ = ("capacity",)

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        super().__init__()
        self.capacity = capacity

    @property
    def full(self) -> bool:
        return len(self) >= self.capacity

    def push(self, item: T) -> T | None:
        """Append ``item``; when full, first drop the oldest item and return it (else None)."""
        dropped = self.popleft() if len(self) >= self.capacity else None
        self.append(item)
        return dropped
