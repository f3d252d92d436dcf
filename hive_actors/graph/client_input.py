"""InputHub: delivers client input (``inject_input``) to the node that waits for it."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import trio


def as_text(content: Any) -> str:
    """Client input as message text: strings as they are, anything else as JSON."""
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, default=str)


class InputHub:
    """Per-execution mailbox of client input, by node id.

    Input for a node that is running (or waiting) is queued for it; input for any other node is
    refused, so a caller learns at once that nobody will read it.
    """

    def __init__(self) -> None:
        self._queues: dict[str, deque[str]] = {}
        self._active: dict[str, int] = {}
        self._wakers: dict[str, trio.Event] = {}

    def activate(self, node_id: str) -> None:
        self._active[node_id] = self._active.get(node_id, 0) + 1

    def deactivate(self, node_id: str) -> None:
        n = self._active.get(node_id, 0) - 1
        if n > 0:
            self._active[node_id] = n
        else:
            self._active.pop(node_id, None)
            self._queues.pop(node_id, None)

    def is_waiting(self, node_id: str) -> bool:
        return node_id in self._wakers

    def preload(self, node_id: str, content: Any) -> None:
        """Queue input for a node before it starts (the reply carried by a resume)."""
        self._queues.setdefault(node_id, deque()).append(as_text(content))

    def deliver(self, node_id: str, content: Any) -> bool:
        """Queue ``content`` for ``node_id``; True when that node is running or waiting."""
        if node_id not in self._active:
            return False
        self._queues.setdefault(node_id, deque()).append(as_text(content))
        waker = self._wakers.get(node_id)
        if waker is not None:
            waker.set()
        return True

    def decline(self, node_id: str) -> bool:
        """Wake ``node_id``'s wait with no input, as if its input timeout had passed (the node
        then pauses, resumable with the reply). False when that node is not waiting."""
        waker = self._wakers.get(node_id)
        if waker is None:
            return False
        waker.set()
        return True

    def take_all(self, node_id: str) -> list[str]:
        """Every input queued for ``node_id`` (oldest first), removing them."""
        q = self._queues.get(node_id)
        if not q:
            return []
        items = list(q)
        q.clear()
        return items

    async def wait(self, node_id: str, timeout: float | None) -> list[str]:
        """Queued input for ``node_id``, waiting up to ``timeout`` seconds (None = forever,
        0 = not at all) for some to arrive; [] when none came."""
        items = self.take_all(node_id)
        if items or timeout == 0:
            return items
        waker = self._wakers[node_id] = trio.Event()
        try:
            with trio.move_on_after(timeout if timeout is not None else float("inf")):
                await waker.wait()
        finally:
            self._wakers.pop(node_id, None)
        return self.take_all(node_id)
