"""What an execution leaves on disk: state.json, logs/summary.json, details.jsonl, tool_logs.jsonl.

A `SessionRecorder` belongs to one execution. ``accepted()`` writes ``state.json`` (status
``running``) before the trigger returns; its ``sink`` forwards every event to the bus and, for
the few event types that matter, records node boundaries, node details, tool calls and token
usage; ``finished()`` writes the final ``state.json`` and ``logs/summary.json``.

Each node boundary costs one group commit: the node's details line and the state.json that
points at the boundary's checkpoint are saved with the checkpoint itself (companions of its
``checkpoint_store``), so the details line of a completed node becomes durable with the
checkpoint that follows it (or with the final state). The end is one group commit too: final
state.json, pending details lines, summary.json.
`NullRecorder` is the lean path when the runtime has no storage: the bus emitter itself.

The recorder reads the execution and the runtime's shared services through the two small
protocols below (`RecordedExecution`, `RecorderServices`), not through their classes.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import trio

from hive_actors.errors import CorruptFileError, InputDataError, UnknownSessionError
from hive_actors.events import EventType
from hive_actors.graph.checkpoint_config import CheckpointConfig
from hive_actors.graph.result import ExecutionResult, SessionState
from hive_actors.graph.spec import EntryPointSpec, Goal
from hive_actors.jsonsafe import is_large
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.runtime.event_bus import BusEmitter
from hive_actors.status import ExecutionStatus
from hive_actors.storage.checkpoint_store import (ENCODE_IN_THREAD_BYTES, ENCODE_IN_THREAD_ITEMS,
                                                  Checkpoint, CheckpointStore)
from hive_actors.storage.owner import OwnerInfo
from hive_actors.storage.session_store import SessionRecord, SessionStore
from hive_actors.storage.seam import DurableLog
from hive_actors.storage.steps import SessionSteps
from hive_actors.storage.writer import FileOp

__all__ = ["NullRecorder", "RecordedExecution", "RecorderServices", "RecordingSink",
           "SessionRecorder"]


class RecordedExecution(Protocol):
    """What the recorder reads of the execution it records."""

    @property
    def id(self) -> str: ...
    @property
    def input_data(self) -> dict[str, Any]: ...
    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def resumed(self) -> bool: ...
    @property
    def session_state(self) -> SessionState | None: ...


class RecorderServices(Protocol):
    """What the recorder reads of the runtime's shared services."""

    @property
    def writer(self) -> DurableLog | None: ...
    @property
    def agent_name(self) -> str: ...
    @property
    def goal(self) -> Goal: ...
    @property
    def owner(self) -> OwnerInfo | None: ...
    @property
    def checkpoint_config(self) -> CheckpointConfig | None: ...
    @property
    def config(self) -> RuntimeConfig: ...


class NullRecorder:
    """No storage: events go straight to the bus; nothing is written."""

    def __init__(self, sink: BusEmitter) -> None:
        self.sink = sink
        self.session_dir = None
        self.checkpoint_store = None
        self.step_log = None

    async def accepted(self) -> None:
        return None

    async def finished(self, result: ExecutionResult) -> None:
        return None


class SessionRecorder:
    """Writes one execution's session files through the runtime's SessionStore."""

    def __init__(self, ex: RecordedExecution, spec: EntryPointSpec, svc: RecorderServices,
                 store: SessionStore, emitter: BusEmitter) -> None:
        self.ex = ex
        self.spec = spec
        self.svc = svc
        self.store = store
        self.session_dir = store.session_dir(ex.id)
        self.sink = RecordingSink(emitter, self)
        self.started_at = dt.datetime.now(dt.timezone.utc)
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_tokens = 0
        self.cost_usd: float | None = None
        self.tool_calls = 0
        self.record: SessionRecord | None = None
        # state.json as its committed groups leave it (None: unknown, write it whole); an
        # engine that accepts deltas then gets only the fields that changed since
        self._on_disk: SessionRecord | None = None
        cp = svc.checkpoint_config
        self.checkpoints = cp is None or cp.enabled
        # a completed node's details line waits for the checkpoint that follows it
        self._defer_details = self.checkpoints and (cp is None or cp.checkpoint_on_node_complete)
        self._pending_details: list[FileOp] = []
        # seq -> the record written together with that checkpoint
        self._with_cp: dict[int, SessionRecord] = {}
        # a new execution's folder cannot hold checkpoints yet: its id was new (not scanned)
        self.checkpoint_store = CheckpointStore(self.session_dir, svc.writer,
                                                companions=self._checkpoint_companions,
                                                new_session=not ex.resumed)
        self.current_node: str | None = None
        # model turns, tool results and inputs of event_loop nodes, replayed on resume
        self.step_log = (SessionSteps(store, ex.id, existing=ex.resumed)
                         if svc.config.step_journal else None)
        if ex.resumed:
            try:
                self.record = self.store.read_state(ex.id)
            except (UnknownSessionError, CorruptFileError):
                self.record = None
        # the status the session had when this execution resumed it (None: a new session)
        self.resumed_from = self.record.status if self.record is not None else None
        if self.record is None:
            self.record = SessionRecord.new(
                ex.id,
                agent_name=svc.agent_name,
                entry_point=spec.id,
                input_data=ex.input_data,
                idempotency_key=ex.idempotency_key,
                owner=svc.owner,
                forked_from=_origin(ex),
            )

    async def _write(self, *extra: FileOp, **changes: Any) -> None:
        """state.json with ``changes``, then ``extra``, in one group commit."""
        assert self.record is not None
        self.record = record = self.record.evolve(**changes)
        try:
            await self.store.commit(self.ex.id, [await self._state_op(record), *extra])
        except BaseException:
            self._on_disk = None  # not known what the file holds: the next write is whole
            raise
        self._on_disk = record

    async def _state_op(self, record: SessionRecord) -> FileOp:
        """The state.json write of ``record`` (a patch of what changed, when the engine
        takes one), encoded in a worker thread when its input or output is large (a
        bounded walk decides), so the event loop never stalls on it."""
        encode, big = self._state_encoder(record)
        if big and is_large(big, max_items=ENCODE_IN_THREAD_ITEMS,
                            max_bytes=ENCODE_IN_THREAD_BYTES):
            return await trio.to_thread.run_sync(encode)
        return encode()

    def _state_encoder(self, record: SessionRecord) -> tuple[Callable[[], FileOp], list[object]]:
        """(what encodes ``record``'s state.json write, the large values it would encode): a
        patch against the file as last written when the engine takes one, else the whole."""
        on_disk = self._on_disk
        if on_disk is not None and self.store.accepts_deltas:
            pairs = zip((record.input_data, record.output), (on_disk.input_data, on_disk.output))
            changed: list[object] = [new for new, old in pairs if new is not old]  # patched
            return functools.partial(self.store.state_patch_op, on_disk, record), changed
        whole: list[object] = [record.input_data, record.output]
        return functools.partial(self.store.state_op, record), whole

    async def accepted(self) -> None:
        """state.json says ``running`` (owned by this process) once this returns. Raises
        InputDataError when the input cannot be stored as JSON (nothing is written then),
        CorruptFileError when a resumed session's step journal is damaged."""
        assert self.record is not None
        if self.step_log is not None and self.ex.resumed:  # read off the event loop, once
            await trio.to_thread.run_sync(self.step_log.load)
        self.record = self.record.evolve(status=ExecutionStatus.RUNNING, owner=self.svc.owner,
                                         error=None, paused_at=None)
        try:
            op = await self._state_op(self.record)  # encodes the input with the rest
        except (TypeError, ValueError) as exc:
            raise InputDataError(
                f"entry point {self.spec.id!r}: input_data cannot be stored as JSON: {exc}"
            ) from None
        ops = [op]
        # for replay: the input of each resume after a pause, the state a fork started from
        if self.resumed_from == ExecutionStatus.PAUSED:
            ops.append(self.store.step_op(self.ex.id, {
                "kind": "resume", "from": "paused", "input": self.ex.input_data}))
        elif self.resumed_from is None and self.ex.session_state is not None:
            ops.append(self.store.step_op(self.ex.id, {
                "kind": "start", "state": self.ex.session_state.to_dict()}))
        await self.store.commit(self.ex.id, ops)
        self._on_disk = self.record

    async def node_boundary(self, node_id: str | None, data: dict[str, Any], ok: bool) -> None:
        details = self.store.details_op(
            self.ex.id,
            {
                "node_id": node_id,
                "success": ok,
                **{k: _jsonable(v) for k, v in data.items()},
                "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
            },
        )
        self.current_node = node_id
        if ok and self._defer_details:
            self._pending_details.append(details)  # saved with the next checkpoint
        elif self.svc.config.state_on_node_boundaries and not self.checkpoints:
            await self._write(details, current_node=node_id)
        else:
            await self.store.commit(self.ex.id, [details])

    def _checkpoint_companions(self, cp: Checkpoint) -> list[FileOp | Callable[[], FileOp]]:
        """What is saved with checkpoint ``cp``: pending details lines and (when state is
        written at node boundaries) state.json pointing at ``cp``, encoded with ``cp`` (in a
        worker thread when the state is large)."""
        ops: list[FileOp | Callable[[], FileOp]] = list(self._pending_details)
        self._pending_details = []
        if self.svc.config.state_on_node_boundaries:
            assert self.record is not None
            record = self.record.evolve(current_node=cp.node_id, checkpoint_seq=cp.seq)
            self._with_cp[cp.seq] = record
            ops.append(self._state_encoder(record)[0])  # encoded with ``cp``
        return ops

    async def checkpoint_saved(self, node_id: str | None, data: dict[str, Any]) -> None:
        """A node boundary with a durable checkpoint: state.json points at it."""
        seq = data.get("seq")
        changes: dict[str, Any] = {"current_node": node_id}
        if isinstance(seq, int):
            changes["checkpoint_seq"] = seq
        assert self.record is not None
        written = self._with_cp.pop(seq, None) if isinstance(seq, int) else None
        if written is not None:  # already on disk, saved with the checkpoint
            changes["updated_at"] = written.updated_at
            self.record = attrs.evolve(self.record, **changes)
            self._on_disk = written
        elif self.svc.config.state_on_node_boundaries:
            await self._write(**changes)
        else:
            self.record = attrs.evolve(self.record, **changes)

    async def tool_call(self, node_id: str | None, data: dict[str, Any]) -> None:
        self.tool_calls += 1
        await self.store.append_tool_log(
            self.ex.id,
            {
                "node_id": node_id,
                **{k: _jsonable(v) for k, v in data.items()},
                "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
            },
        )

    def usage(self, data: dict[str, Any]) -> None:
        self.input_tokens += int(data.get("input_tokens") or 0)
        self.output_tokens += int(data.get("output_tokens") or 0)
        self.cached_tokens += int(data.get("cached_tokens") or 0)
        if data.get("cost_usd") is not None:  # None: the model's price is not known
            self.cost_usd = (self.cost_usd or 0.0) + float(data["cost_usd"])

    async def finished(self, result: ExecutionResult) -> None:
        """Final state.json (completed, failed, paused or cancelled), pending details lines
        and logs/summary.json, in one group commit (summary only if state.json is saved)."""
        now = dt.datetime.now(dt.timezone.utc)
        summary = self.store.summary_op(
            self.ex.id,
            {
                "session_id": self.ex.id,
                "agent_name": self.svc.agent_name,
                "goal_id": self.svc.goal.id,
                "entry_point": self.spec.id,
                "status": result.status,
                "success": result.success,
                "error": result.error,
                "paused_at": result.paused_at,
                "path": list(result.path),
                "steps_executed": result.steps_executed,
                "execution_quality": result.execution_quality,
                "total_retries": result.total_retries,
                "tool_calls": self.tool_calls,
                "usage": {
                    "input_tokens": self.input_tokens,
                    "output_tokens": self.output_tokens,
                    "cached_tokens": self.cached_tokens,
                    "total_tokens": max(result.total_tokens, self.input_tokens + self.output_tokens),
                    "cost_usd": self.cost_usd,
                },
                "total_latency_ms": result.total_latency_ms,
                "started_at": self.started_at.isoformat(),
                "ended_at": now.isoformat(),
                "duration_ms": (now - self.started_at).total_seconds() * 1000.0,
            },
        )
        pending, self._pending_details = self._pending_details, []
        await self._write(
            *pending,
            summary,
            status=result.status,
            paused_at=result.paused_at,
            error=result.error,
            output=result.output,
            current_node=result.paused_at or (result.path[-1] if result.path else None),
        )


class RecordingSink:
    """An EventSink that publishes through the bus emitter, then records what matters."""

    __slots__ = ("_inner", "_rec")

    def __init__(self, inner: BusEmitter, recorder: SessionRecorder) -> None:
        self._inner = inner
        self._rec = recorder

    def may_wait(self) -> bool:
        """Always: recording an event may wait for the disk."""
        return True

    def wants(self, type: EventType) -> bool:
        return type in _RECORDED or self._inner.wants(type)

    async def emit(self, type: EventType, node_id: str | None = None, **data: Any) -> None:
        await self._inner.emit(type, node_id, **data)
        if type not in _RECORDED:
            return
        rec = self._rec
        if type is EventType.NODE_COMPLETED:
            await rec.node_boundary(node_id, data, True)
        elif type is EventType.NODE_FAILED:
            await rec.node_boundary(node_id, data, False)
        elif type is EventType.TOOL_CALL_COMPLETED:
            if not data.get("replayed"):  # logged when it ran
                await rec.tool_call(node_id, data)
        elif type is EventType.LLM_TURN_COMPLETED:
            if not data.get("replayed"):  # paid when it ran
                rec.usage(data)
        elif type is EventType.CHECKPOINT_SAVED:
            await rec.checkpoint_saved(node_id, data)

    def emit_nowait(self, type: EventType, node_id: str | None = None, **data: Any) -> int:
        return self._inner.emit_nowait(type, node_id, **data)


_RECORDED = frozenset(
    {
        EventType.NODE_COMPLETED,
        EventType.NODE_FAILED,
        EventType.TOOL_CALL_COMPLETED,
        EventType.LLM_TURN_COMPLETED,
        EventType.CHECKPOINT_SAVED,
    }
)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return str(value)


def _origin(ex: RecordedExecution) -> str | None:
    """The session a new execution's session_state came from (None: a fresh start)."""
    state = ex.session_state
    if state is None or not state.session_id or state.session_id == ex.id:
        return None
    return state.session_id
