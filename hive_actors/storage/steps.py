"""`SessionSteps`: one session's step journal, ``logs/steps.jsonl`` (see
`hive_actors.graph.steps` for what a step is and how a resume replays it).

Each record is one JSONL line appended through `SessionStore.append_step`: durable on
return, group-committed with other sessions' records by the storage engine (one write and
one fdatasync per batch with the journal). The records of an earlier run are read once, when a
resumed session's execution is accepted (`load`); a new session starts empty. A line cut by a
crash is ignored, a damaged line elsewhere raises `CorruptFileError` naming the file and line;
of two records with the same key the later one wins.
"""

from __future__ import annotations

from typing import Any

from hive_actors.graph.steps import StepKey
from hive_actors.storage.session_store import SessionStore

__all__ = ["SessionSteps", "step_key"]


def step_key(record: dict[str, Any]) -> StepKey:
    """The key a stored record was written under."""
    return (str(record.get("node")), int(record.get("visit", 0)), int(record.get("attempt", 0)),
            int(record.get("step", 0)), int(record.get("at", 0)), str(record.get("part", "")))


class SessionSteps:
    """The `StepLog` of one session, over its `SessionStore`."""

    def __init__(self, store: SessionStore, session_id: str, *, existing: bool) -> None:
        self.store = store
        self.session_id = session_id
        self._records: dict[StepKey, dict[str, Any]] | None = None if existing else {}
        self._attempts: set[tuple[str, int, int]] = set()

    def load(self) -> None:
        """Read the earlier records now (blocking: a resumed session's recorder calls it in a
        worker thread before the execution starts). Raises `CorruptFileError`."""
        self._loaded()

    def _loaded(self) -> dict[StepKey, dict[str, Any]]:
        if self._records is None:
            self._records = {}
            for rec in self.store.read_steps(self.session_id):
                if rec.get("kind") in ("resume", "start"):  # what replay needs, not a step
                    continue
                key = step_key(rec)
                self._records[key] = rec
                self._attempts.add(key[:3])
        return self._records

    def lookup(self, key: StepKey) -> dict[str, Any] | None:
        return self._loaded().get(key)

    def has_steps(self, node_id: str, visit: int, attempt: int) -> bool:
        self._loaded()
        return (node_id, visit, attempt) in self._attempts

    async def record(self, key: StepKey, payload: dict[str, Any]) -> None:
        node, visit, attempt, step, at, part = key
        await self.store.append_step(self.session_id, {
            "node": node, "visit": visit, "attempt": attempt, "step": step, "at": at,
            "part": part, **payload})
