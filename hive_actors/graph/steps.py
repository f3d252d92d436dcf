"""The step journal as one attempt of an event_loop node sees it.

Every completed model turn, tool result and client input the node takes is recorded through a
`StepLog` (the runtime gives one per session: ``logs/steps.jsonl``) and awaited, so it is
durable before the next step uses it. A step is keyed by (node id, visit, attempt, step number,
conversation length before it, part); ``part`` is ``""`` for a turn or an input, ``"tool:ID"``
for the result of tool call ID of that turn and ``"start:ID"`` for the start of a tool that is
not safe to repeat. The conversation length tells apart the steps of one visit continued after
a pause (its step numbers start again, its conversation is longer).

When the node runs again after a crash, ``stop()`` or a pause (the visit counter comes from the
checkpoint it resumes from, so it is the same visit), `NodeSteps` hands back the recorded steps
in order instead of calling the model or the tool; the first step without a record (at that
number and conversation length: otherwise the run took another path) ends the replay and
everything after it is live and recorded.
"""

from __future__ import annotations

from typing import Any, Protocol

from hive_actors.errors import NodeError

StepKey = tuple[str, int, int, int, int, str]


def decision_key(source: str, visit: int, edge_id: str) -> StepKey:
    """The key of an ``llm_decide`` verdict on ``edge_id`` after visit ``visit`` of ``source``."""
    return (source, visit, 0, 0, 0, f"edge:{edge_id}")
Turn = tuple[int, int]  # a turn's step number and the conversation length before it


class StepLog(Protocol):
    """Where step records live (`hive_actors.storage.steps.SessionSteps`)."""

    def lookup(self, key: StepKey) -> dict[str, Any] | None:
        """The record stored under ``key``, or None."""
        ...

    def has_steps(self, node_id: str, visit: int, attempt: int) -> bool:
        """True when some step of that attempt was recorded."""
        ...

    async def record(self, key: StepKey, payload: dict[str, Any]) -> None:
        """Store ``payload`` under ``key``; durable on return."""
        ...


class UnsafeToRepeatError(NodeError):
    """A tool that declares itself not safe to repeat was in flight when the session was
    interrupted: whether it took effect is unknown, so the resume stops instead of calling it
    again."""


class NodeSteps:
    """The steps of one attempt of one node: replayed while records exist, then recorded."""

    def __init__(self, log: StepLog | None, node_id: str, visit: int, attempt: int) -> None:
        self.log = log
        self.node_id = node_id
        self.visit = visit
        self.attempt = attempt
        self.n = 0  # the next step's number
        self.replaying = log is not None and log.has_steps(node_id, visit, attempt)

    def _key(self, step: int, at: int, part: str = "") -> StepKey:
        return (self.node_id, self.visit, self.attempt, step, at, part)

    def replay_turn(self, at: int) -> tuple[int, dict[str, Any]] | None:
        """The step number and record of the turn recorded at this point (``at``: the
        conversation length before it), or None: then the replay is over and the turn is
        made live."""
        rec = self._next(at)
        if rec is None or rec.get("kind") != "turn":
            self.replaying = False
            return None
        self.n += 1
        return self.n - 1, rec

    def replay_input(self, at: int, *, waiting: bool = False) -> list[str] | None:
        """The client input recorded at this point (maybe []: the recorded run took none
        here, so a replay takes none either), or None when live. ``waiting``: the node waits
        for input here, so the recorded run either got some or ended here."""
        rec = self._next(at)
        if rec is None or (waiting and rec.get("kind") != "input"):
            self.replaying = False
            return None
        if rec.get("kind") != "input":
            return []
        self.n += 1
        return [str(item) for item in rec.get("items", [])]

    def _next(self, at: int) -> dict[str, Any] | None:
        if not self.replaying or self.log is None:
            return None
        return self.log.lookup(self._key(self.n, at))

    def tool_result(self, turn: Turn, call_id: str) -> dict[str, Any] | None:
        """The recorded result of tool call ``call_id`` of ``turn``, or None."""
        return None if self.log is None else self.log.lookup(self._key(*turn, f"tool:{call_id}"))

    def tool_started(self, turn: Turn, call_id: str) -> bool:
        """True when a tool not safe to repeat was recorded as started at that call."""
        return (self.log is not None
                and self.log.lookup(self._key(*turn, f"start:{call_id}")) is not None)

    async def record_turn(self, at: int, payload: dict[str, Any]) -> Turn:
        """Record a live turn; returns its (step number, conversation length)."""
        step = self.n
        self.n += 1
        if self.log is not None:
            await self.log.record(self._key(step, at), {"kind": "turn", **payload})
        return step, at

    async def record_input(self, at: int, items: list[str]) -> None:
        if not items:
            return
        step = self.n
        self.n += 1
        if self.log is not None:
            await self.log.record(self._key(step, at), {"kind": "input", "items": items})

    async def record_tool(self, turn: Turn, call_id: str, payload: dict[str, Any]) -> None:
        if self.log is not None:
            await self.log.record(self._key(*turn, f"tool:{call_id}"), {"kind": "tool", **payload})

    async def record_tool_start(self, turn: Turn, call_id: str, name: str) -> None:
        if self.log is not None:
            await self.log.record(self._key(*turn, f"start:{call_id}"),
                                  {"kind": "tool_start", "tool": name})
