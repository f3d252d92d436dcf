"""SharedBufferManager: the buffer scopes (global, stream, execution) and isolation levels.

- ``isolated``: an execution reads and writes only its own scope.
- ``shared``: reads fall through execution -> stream -> global (first hit wins); a plain write
  goes to the execution scope and is published to the stream scope, so later reads by other
  executions of the stream see it; ``write(..., scope="global")`` writes the global scope.
- ``synchronized``: like ``shared``, and every stream/global write takes that key's
  ``trio.Lock``. ``async with scope.locked(key):`` holds the same lock across a
  read-modify-write that awaits, so concurrent writers of the key wait for it.

Trio switches tasks only at ``await``, so single dict operations need no lock; the per-key
locks exist only to serialise read-modify-write sequences on stream/global keys. A lock is
forgotten as soon as nobody holds or waits for it (the table never grows without bound).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import attrs
import trio

from hive_actors.errors import HiveActorsError
from hive_actors.graph.spec import ISOLATION_LEVELS
from hive_actors.events import EventSink, EventType

SCOPES = ("execution", "stream", "global")


class StateScopeError(HiveActorsError, ValueError):
    """A write names a scope its isolation level does not allow, or an unknown level/scope."""


class _HasEmitter(Protocol):
    def emitter(self, stream_id: str, execution_id: str) -> EventSink: ...


@attrs.define
class _KeyLock:
    lock: trio.Lock = attrs.field(factory=trio.Lock)
    users: int = 0  # tasks holding or waiting for the lock


class SharedBufferManager:
    """Owns every scope's dict. ``bus`` (an EventBus) receives ``STATE_CHANGED`` events."""

    def __init__(self, bus: _HasEmitter | None = None) -> None:
        self.bus = bus
        self.global_state: dict[str, Any] = {}
        self.stream_state: dict[str, dict[str, Any]] = {}
        self.execution_state: dict[str, dict[str, Any]] = {}
        self.version = 0  # bumped by every write
        self._locks: dict[tuple[str, ...], _KeyLock] = {}

    def scope_for(self, execution_id: str, stream_id: str, level: str = "isolated", *,
                  events: EventSink | None = None) -> BufferScope:
        """The view of one execution; ``events`` overrides where STATE_CHANGED goes (default:
        the bus's emitter for this execution, or nowhere). Raises StateScopeError for an
        unknown level."""
        if level not in ISOLATION_LEVELS:
            raise StateScopeError(
                f"unknown isolation level {level!r} for execution {execution_id!r}; "
                f"expected one of {', '.join(ISOLATION_LEVELS)}"
            )
        self.execution_state.setdefault(execution_id, {})
        if level != "isolated":
            self.stream_state.setdefault(stream_id, {})
        if events is None and self.bus is not None:
            events = self.bus.emitter(stream_id, execution_id)
        return BufferScope(self, execution_id, stream_id, level, events)

    def cleanup_execution(self, execution_id: str) -> None:
        """Forget an execution's scope (what it published to its stream stays)."""
        self.execution_state.pop(execution_id, None)

    def cleanup_stream(self, stream_id: str) -> None:
        """Forget a stream's scope (call when the stream stops)."""
        self.stream_state.pop(stream_id, None)

    def stats(self) -> dict[str, int]:
        return {
            "version": self.version,
            "global_keys": len(self.global_state),
            "streams": len(self.stream_state),
            "executions": len(self.execution_state),
            "locks": len(self._locks),
        }

    @asynccontextmanager
    async def key_lock(self, lock_key: tuple[str, ...]) -> AsyncIterator[None]:
        """Hold the lock of one stream/global key (re-entrant within a task)."""
        entry = self._locks.get(lock_key)
        if entry is None:
            entry = self._locks[lock_key] = _KeyLock()
        if entry.lock.statistics().owner is trio.lowlevel.current_task():
            yield  # already held by this task (a write inside ``locked()``)
            return
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[lock_key]


class BufferScope:
    """One execution's view of the buffers, at one isolation level."""

    def __init__(self, manager: SharedBufferManager, execution_id: str, stream_id: str,
                 level: str, events: EventSink | None) -> None:
        self.manager = manager
        self.execution_id = execution_id
        self.stream_id = stream_id
        self.level = level
        self.events = events

    def _layers(self) -> list[dict[str, Any]]:
        m = self.manager
        own = m.execution_state.get(self.execution_id, {})
        if self.level == "isolated":
            return [own]
        return [own, m.stream_state.get(self.stream_id, {}), m.global_state]

    def get(self, key: str, default: Any = None) -> Any:
        """The value this execution sees for ``key`` (see the module doc), else ``default``."""
        for layer in self._layers():
            if key in layer:
                return layer[key]
        return default

    def snapshot(self) -> dict[str, Any]:
        """Every key this execution sees, merged (execution wins over stream over global)."""
        merged: dict[str, Any] = {}
        for layer in reversed(self._layers()):
            merged.update(layer)
        return merged

    async def write(self, key: str, value: Any, *, scope: str | None = None) -> None:
        """Write ``key``. ``scope=None``: execution scope, plus the stream scope unless
        isolated. ``"stream"``/``"global"`` write only there and need a shared or synchronized
        level (StateScopeError otherwise). Emits one STATE_CHANGED per scope written."""
        if scope is None and self.level == "isolated":  # the common case, one call deep
            await self._set("execution", key, value)
            return
        if scope is not None and scope not in SCOPES:
            raise StateScopeError(f"unknown scope {scope!r} for key {key!r}; expected {SCOPES}")
        if self.level == "isolated" and scope not in (None, "execution"):
            raise StateScopeError(
                f"execution {self.execution_id!r} is isolated: it cannot write {key!r} to "
                f"the {scope} scope"
            )
        if scope in (None, "execution"):
            await self._set("execution", key, value)
        if (scope is None and self.level != "isolated") or scope == "stream":
            await self._write_shared("stream", key, value)
        elif scope == "global":
            await self._write_shared("global", key, value)

    @asynccontextmanager
    async def locked(self, key: str, scope: str = "stream") -> AsyncIterator[BufferScope]:
        """Hold ``key``'s lock in ``scope`` ("stream" or "global") for a read-modify-write
        that awaits. Under ``synchronized``, other writers of that key wait; at other levels
        this takes no lock (nothing else would honour it)."""
        if scope not in ("stream", "global"):
            raise StateScopeError(f"only stream/global keys have locks, not {scope!r} ({key!r})")
        if self.level != "synchronized":
            yield self
            return
        async with self.manager.key_lock(self._lock_key(scope, key)):
            yield self

    def _lock_key(self, scope: str, key: str) -> tuple[str, ...]:
        return ("global", key) if scope == "global" else ("stream", self.stream_id, key)

    async def _write_shared(self, scope: str, key: str, value: Any) -> None:
        if self.level == "synchronized":
            async with self.manager.key_lock(self._lock_key(scope, key)):
                await self._set(scope, key, value)
        else:
            await self._set(scope, key, value)

    async def _set(self, scope: str, key: str, value: Any) -> None:
        m = self.manager
        if scope == "execution":
            layer = m.execution_state.setdefault(self.execution_id, {})
        elif scope == "stream":
            layer = m.stream_state.setdefault(self.stream_id, {})
        else:
            layer = m.global_state
        old = layer.get(key)
        layer[key] = value
        m.version += 1
        events = self.events
        if events is not None and events.wants(EventType.STATE_CHANGED):
            await events.emit(EventType.STATE_CHANGED, None, key=key, old_value=old,
                              new_value=value, scope=scope)
