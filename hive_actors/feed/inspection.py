"""Requests the dashboard draws from: the graph with its layout, one stored session, resume.

Each handler takes the runtime and one validated request and returns the ``result`` payload,
or raises (``dispatch.error_for`` turns the exception into the ``error`` reply). Disk reads
run in a worker thread, so a slow disk never stalls the feed's other connections.
"""

from __future__ import annotations

from typing import Any

import trio

from hive_actors.errors import RuntimeStateError
from hive_actors.feed import protocol as p
from hive_actors.serde import to_data


async def get_graph(runtime: Any, request: p.GetGraph) -> dict[str, Any]:
    """The graph's ids and roles plus its layout (see ``hive_actors.graph.layout``)."""
    from hive_actors.graph.layout import layout_graph

    graph = getattr(runtime, "graph", None)
    if graph is None:
        raise RuntimeStateError("this runtime has no graph to show")
    layout = await trio.to_thread.run_sync(layout_graph, graph)
    return {
        "graph_id": graph.id,
        "entry_node": graph.entry_node,
        "terminal_nodes": list(graph.terminal_nodes),
        "pause_nodes": list(graph.pause_nodes),
        "layout": to_data(layout),
    }


def _store(runtime: Any) -> tuple[Any, Any]:
    """The runtime's session reader (the storage seam: files or Postgres) while it runs, else
    the folder's files; and the folder layout that names a session's path."""
    from hive_actors.storage.session_store import SessionStore

    storage_path = getattr(runtime, "storage_path", None)
    if storage_path is None:
        raise RuntimeStateError("this runtime keeps no sessions on disk (no storage_path)")
    folders = SessionStore(storage_path)
    return getattr(runtime, "sessions", None) or folders, folders


def _read_session(store: Any, folders: Any, session_id: str) -> dict[str, Any]:
    record = store.read_state(session_id)  # UnknownSessionError: not_found
    folder = folders.session_dir(session_id)
    checkpoints = store.checkpoints(session_id, skip_damaged=True)
    return {
        "session": to_data(record),
        "path": str(folder),
        "checkpoints": [
            {"seq": cp.seq, "kind": cp.kind, "node_id": cp.node_id,
             "created_at": cp.created_at.isoformat()}
            for cp in checkpoints
        ],
        "output": to_data(record.output),
        "summary": store.read_summary(session_id),
    }


async def flush_view(runtime: Any) -> None:
    """Wait until the runtime's session files show every durable record (its journal's view
    lags by a pass), so a page reads what the runtime already reported."""
    flush = getattr(runtime, "flush_view", None)
    if flush is not None:
        await flush()


async def get_session(runtime: Any, request: p.GetSession) -> dict[str, Any]:
    """The stored record, folder, checkpoints (seq, kind, node, time), output and summary."""
    store, folders = _store(runtime)
    await flush_view(runtime)
    return await trio.to_thread.run_sync(_read_session, store, folders, request.session_id)


async def resume_session(runtime: Any, request: p.ResumeSession) -> dict[str, Any]:
    """Resubmit the session; replies once accepted (its events follow on the bus)."""
    execution_id = await runtime.resume_nowait(request.session_id)
    return {"execution_id": execution_id}
