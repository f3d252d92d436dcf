"""Requests that call the runtime: trigger, inject_input, get_stats, list_sessions, entry points
(and, through ``inspection``, get_graph, get_session, resume_session).

Each returns the JSON-able ``result`` payload or raises; ``error_for`` turns an exception into
the ``error`` reply, so a failing call answers the client and never ends the connection.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import trio

from hive_actors.errors import (
    HiveActorsError,
    UnknownEntryPointError,
    UnknownNodeError,
    UnknownSessionError,
)
from hive_actors.feed import inspection
from hive_actors.feed import protocol as p
from hive_actors.serde import to_data

log = logging.getLogger(__name__)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def call_runtime(runtime: Any, request: p.Request) -> Any:
    """Run one runtime-facing request; returns its ``result`` payload (JSON-able data)."""
    if isinstance(request, p.Trigger):
        execution_id = await runtime.trigger(
            request.entry_point,
            request.input,
            session_state=request.session_state,
            idempotency_key=request.idempotency_key,
        )
        return {"execution_id": execution_id}
    if isinstance(request, p.InjectInput):
        delivered = await runtime.inject_input(
            request.node_id, request.content, execution_id=request.execution_id
        )
        return {"delivered": bool(delivered)}
    if isinstance(request, p.GetStats):
        return to_data(await _maybe_await(runtime.get_stats()))
    if isinstance(request, p.ListSessions):
        sessions = await _list_sessions(runtime, request.status)
        sessions.reverse()  # newest first
        if request.limit is not None:
            sessions = sessions[: request.limit]
        return {"sessions": to_data(sessions)}
    if isinstance(request, p.ListEntryPoints):
        return {"entry_points": to_data(list(runtime.get_entry_points()))}
    if isinstance(request, p.GetGraph):
        return await inspection.get_graph(runtime, request)
    if isinstance(request, p.GetSession):
        return await inspection.get_session(runtime, request)
    if isinstance(request, p.ResumeSession):
        return await inspection.resume_session(runtime, request)
    raise TypeError(f"call_runtime: {type(request).__name__} is not a runtime request")


async def _list_sessions(runtime: Any, status: str | None) -> list[Any]:
    """Stored sessions, oldest first: the runtime's own listing, else its storage folder."""
    own = getattr(runtime, "list_sessions", None)
    if own is not None:
        return list(await _maybe_await(own(status=status)))
    storage_path = getattr(runtime, "storage_path", None)
    if storage_path is None:
        return []
    from hive_actors.storage.session_store import SessionStore

    await inspection.flush_view(runtime)
    # the runtime's reader (the storage seam) while it runs, else the folder's files
    store = getattr(runtime, "sessions", None) or SessionStore(storage_path)
    return await trio.to_thread.run_sync(lambda: store.list_sessions(status=status))


def error_for(request_id: p.RequestId | None, kind: str, exc: BaseException) -> p.Error:
    """The ``error`` reply for a request that raised ``exc``."""
    if isinstance(exc, (UnknownEntryPointError, UnknownNodeError, UnknownSessionError)):
        return p.Error(request_id, p.NOT_FOUND, f"{kind}: {exc}")
    if isinstance(exc, HiveActorsError):
        return p.Error(request_id, p.REJECTED, f"{kind}: {exc}")
    log.exception("feed: %s request %r failed", kind, request_id, exc_info=exc)
    return p.Error(request_id, p.INTERNAL, f"{kind}: internal error: {type(exc).__name__}: {exc}")
