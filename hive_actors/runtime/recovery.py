"""Session resume and recovery for `AgentRuntime`: continue a stopped session from its latest
checkpoint, and find (optionally resume) sessions a crash left ``running`` on disk."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from hive_actors.errors import HiveActorsError, RuntimeStateError, UnknownSessionError
from hive_actors.runtime.execution_stream import Execution
from hive_actors.storage.checkpoint_store import CheckpointStore

if TYPE_CHECKING:
    from hive_actors.runtime.agent_runtime import AgentRuntime
    from hive_actors.runtime.services import RuntimeServices

__all__ = ["recover_interrupted", "resume_session"]

log = logging.getLogger(__name__)


async def resume_session(runtime: AgentRuntime, session_id: str,
                         input_data: dict[str, Any] | None) -> Execution:
    """Submit ``session_id`` again to its entry point's stream, from its latest checkpoint
    (or from the start with its original input if none was saved).

    Raises RuntimeStateError (not running, no storage, session already running or
    completed), UnknownSessionError, UnknownEntryPointError.
    """
    runtime._check_running()
    sessions = runtime._svc.sessions
    if sessions is None:
        raise RuntimeStateError("resume needs a runtime with a storage_path")
    streams = runtime._streams.values()
    if session_id in runtime._resuming or any(s.find(session_id) for s in streams):
        raise RuntimeStateError(f"session {session_id!r} is already running here")
    record = await trio.to_thread.run_sync(sessions.read_state, session_id)
    if record.status == "completed":
        raise RuntimeStateError(f"session {session_id!r} already completed; nothing to resume")
    stream = runtime._stream(record.entry_point)
    store = CheckpointStore(sessions.session_dir(session_id), runtime._svc.writer)
    latest = await trio.to_thread.run_sync(lambda: store.latest(skip_damaged=True))
    runtime._resuming.add(session_id)
    try:
        if latest is None:  # nothing completed: start over with the original input
            return await stream.submit(record.input_data, None, execution_id=session_id,
                                       resumed=True)
        return await stream.submit(dict(input_data or {}), latest.state,
                                   execution_id=session_id, resumed=True)
    finally:
        runtime._resuming.discard(session_id)


def recover_interrupted(runtime: AgentRuntime, work: trio.Nursery, svc: RuntimeServices) -> None:
    """Record the sessions left ``running`` on disk in ``runtime.interrupted_sessions`` and,
    if the config asks, resume each in ``work``. A failed scan is logged, never raised."""
    if svc.sessions is None:
        return
    try:
        orphans = svc.sessions.find_orphaned()
    except HiveActorsError:
        log.exception("could not scan %s for interrupted sessions", svc.sessions.sessions_dir)
        return
    runtime.interrupted_sessions = [r.session_id for r in orphans]
    if runtime.config.resume_interrupted:
        for sid in runtime.interrupted_sessions:
            work.start_soon(_resume_quietly, runtime, sid)


async def _resume_quietly(runtime: AgentRuntime, session_id: str) -> None:
    try:
        await resume_session(runtime, session_id, None)
    except (HiveActorsError, UnknownSessionError) as exc:
        log.error("could not resume interrupted session %s: %s", session_id, exc)
