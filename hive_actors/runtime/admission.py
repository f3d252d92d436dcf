"""Admission of new executions for `AgentRuntime.trigger`: check the input, then submit it to
its entry point's stream, at most once per idempotency key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hive_actors.errors import InputDataError
from hive_actors.graph.result import SessionState
from hive_actors.runtime.execution_stream import Execution

if TYPE_CHECKING:
    from hive_actors.runtime.agent_runtime import AgentRuntime

__all__ = ["submit_execution"]


async def submit_execution(runtime: AgentRuntime, entry_point_id: str,
                           input_data: dict[str, Any] | None, session_state: Any,
                           key: str | None) -> Execution:
    """Submit a new execution to ``entry_point_id``'s stream and return it once accepted (the
    same one again for a repeated ``key``). Raises what `AgentRuntime.trigger` raises."""
    runtime._check_running()
    stream = runtime._stream(entry_point_id)
    data = _input_dict(entry_point_id, input_data)
    if session_state is not None:
        session_state = SessionState.from_dict(session_state)
    if key is None:
        return await stream.submit(data, session_state)
    return await runtime._claims.submit_once(
        key, stream.id,
        lambda: stream.submit(data, session_state, idempotency_key=key),
        ttl=runtime.config.idempotency_ttl_seconds, max_keys=runtime.config.idempotency_max_keys,
    )


def _input_dict(entry_point_id: str, input_data: Any) -> dict[str, Any]:
    """A copy of ``input_data`` as a dict; raises InputDataError for anything else (values JSON
    cannot hold are refused when state.json is written, by the session recorder)."""
    if input_data is None:
        return {}
    if not isinstance(input_data, dict) or not all(isinstance(k, str) for k in input_data):
        raise InputDataError(
            f"entry point {entry_point_id!r}: input_data must be a dict with string keys "
            f"(a JSON object), got {type(input_data).__name__}")
    return dict(input_data)
