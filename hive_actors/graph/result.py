"""ExecutionResult and the versioned session_state that resumes an execution."""

from __future__ import annotations

import json
from typing import Any, Protocol

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from hive_actors.errors import SessionStateError
from hive_actors.serde import converter
from hive_actors.status import ExecutionStatus

SESSION_STATE_VERSION = 1


@attrs.frozen
class SessionState:
    """Everything needed to continue an execution. Stored as JSON in checkpoints.

    ``next_nodes`` are the nodes to run next (several after a fan-out); ``resume_after`` names
    a pause node whose outgoing edges still have to be followed; ``waiting_input`` names a
    client-facing node that was waiting for the user when the execution paused.
    """

    session_id: str = ""
    memory: dict[str, Any] = attrs.field(factory=dict)
    execution_path: tuple[str, ...] = ()
    node_visit_counts: dict[str, int] = attrs.field(factory=dict)
    next_nodes: tuple[str, ...] = ()
    paused_at: str | None = None
    resume_after: str | None = None
    waiting_input: str | None = None
    # node id (isolated mode) or "_shared" (continuous mode) -> OpenAI-style messages
    conversations: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)
    steps_executed: int = 0
    total_tokens: int = 0
    total_retries: int = 0
    version: int = SESSION_STATE_VERSION

    def to_dict(self) -> dict[str, Any]:
        """What the one converter makes of it (tests/test_runtime_hot_path.py checks that they
        agree), built directly: every result carries one, so it stays off cattrs' generic
        path. Containers are copied, values (JSON already) are not."""
        return {
            "session_id": self.session_id,
            "memory": dict(self.memory),
            "execution_path": list(self.execution_path),
            "node_visit_counts": dict(self.node_visit_counts),
            "next_nodes": list(self.next_nodes),
            "paused_at": self.paused_at,
            "resume_after": self.resume_after,
            "waiting_input": self.waiting_input,
            "conversations": {k: [dict(m) for m in v] for k, v in self.conversations.items()},
            "steps_executed": self.steps_executed,
            "total_tokens": self.total_tokens,
            "total_retries": self.total_retries,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: object) -> SessionState:
        """A SessionState from a dict or its JSON text (a SessionState is returned as it is,
        not parsed again); raises SessionStateError saying which field is wrong."""
        if isinstance(data, SessionState):
            return data
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise SessionStateError(f"session_state is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SessionStateError(
                f"session_state must be a dict, got {type(data).__name__}"
            )
        version = data.get("version", SESSION_STATE_VERSION)
        if version != SESSION_STATE_VERSION:
            raise SessionStateError(
                f"session_state version {version!r} is not supported "
                f"(this hive_actors reads version {SESSION_STATE_VERSION})"
            )
        if "memory" not in data and "data_buffer" in data:  # Hive's key name
            data = dict(data)
            data["memory"] = data.pop("data_buffer")
        try:
            return converter.structure(data, cls)
        except cattrs.ClassValidationError as exc:
            msgs = "; ".join(cattrs.transform_error(exc, path="session_state"))
            raise SessionStateError(f"malformed session_state: {msgs}") from None


class StateSource(Protocol):
    """What a finished execution's state can be read from later (graph/run_state.RunState)."""

    def snapshot(self) -> SessionState: ...


LazyState = dict[str, Any] | SessionState | StateSource | None


def _state_dict(value: LazyState) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, SessionState):
        return value.to_dict()
    return value.snapshot().to_dict()


@attrs.frozen
class ExecutionResult:
    success: bool
    output: dict[str, Any] = attrs.field(factory=dict)
    error: str | None = None
    paused_at: str | None = None
    # given as ``session_state=``: a dict, or the SessionState (or the finished state it is
    # read from) an executor ends with, made a dict only when someone reads ``session_state``
    # (most results are never resumed)
    _session_state: LazyState = attrs.field(
        default=None, alias="session_state",
        eq=attrs.cmp_using(eq=lambda a, b: _state_dict(a) == _state_dict(b)),
        repr=lambda v: repr(_state_dict(v)))
    path: tuple[str, ...] = ()
    steps_executed: int = 0
    total_tokens: int = 0
    total_latency_ms: float = 0.0
    node_visit_counts: dict[str, int] = attrs.field(factory=dict)
    total_retries: int = 0
    execution_quality: str = "clean"  # "clean" | "degraded" | "failed"
    session_id: str = ""
    # completed, failed, paused or cancelled; the text of a status is accepted too
    status: ExecutionStatus = attrs.field(default=ExecutionStatus.COMPLETED,
                                          converter=ExecutionStatus)

    @property
    def session_state(self) -> dict[str, Any] | None:
        """What resumes this execution (``SessionState.to_dict()``), built on first read."""
        value = self._session_state
        if value is None or isinstance(value, dict):
            return value
        made = _state_dict(value)
        object.__setattr__(self, "_session_state", made)  # frozen: a cache, same value
        return made


def _structure_state(value: object, _: object) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise TypeError(f"session_state must be a dict or null, got {type(value).__name__}")


# JSON data keeps the key "session_state"
_unstructure_result = make_dict_unstructure_fn(ExecutionResult, converter,
                                               _session_state=override(omit=True))
converter.register_unstructure_hook(
    ExecutionResult,
    lambda r: {**_unstructure_result(r), "session_state": r.session_state})
converter.register_structure_hook(ExecutionResult, make_dict_structure_fn(
    ExecutionResult, converter, _cattrs_forbid_extra_keys=True,
    _session_state=override(rename="session_state", struct_hook=_structure_state)))
