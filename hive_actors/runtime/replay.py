"""Deterministic replay of a recorded session (``AgentRuntime.replay``, ``hive-actors replay``).

A replay runs the session again in a scratch storage folder from its records alone: its
original input, its step journal (``logs/steps.jsonl``: every model turn, tool result and
client input of its event_loop nodes) and the input of each resume after a pause. The model
is `OfflineLLM` (it refuses every call: a turn must come from the records) unless one is given,
and every tool refuses to run (`offline_tools`): no network, no side effects. Function and
router nodes run again (they are the code under test).

The re-derived trace is then compared with the recorded one (`session_trace`): how many
recorded steps the replay used (all of them, or it went another way); per node, its
details lines in order; the conversations, visit counts, path and memory of the latest
checkpoint; the final status, output, error and pause point. Parallel branches finish in any
order, so nodes are compared one by one and the path as a multiset. A session that was
interrupted (``running`` or ``cancelled``) is compared up to its latest checkpoint: the replay
runs out of records where the session stopped.

``llm_decide`` verdicts are replayed from their ``decision`` records. Not recorded: what a
function node reads from outside (the clock, files): it runs again.
"""

from __future__ import annotations

import collections
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, AsyncIterator

import attrs

from hive_actors.errors import LLMError, ToolError
from hive_actors.events import AgentEvent, EventType
from hive_actors.graph.spec import GraphSpec
from hive_actors.llm.provider import Chunk, LLMRequest
from hive_actors.status import ExecutionStatus
from hive_actors.storage.session_store import SessionStore, read_jsonl
from hive_actors.tools.registry import Tool, ToolRegistry

__all__ = ["OfflineLLM", "ReplayPlan", "ReplayReport", "StepsUsed", "compare_traces",
           "offline_tools", "prepare_replay", "session_trace"]

# fields of a details line that differ from run to run
_VOLATILE = frozenset({"timestamp", "latency_ms"})
_INTERRUPTED = (ExecutionStatus.RUNNING, ExecutionStatus.CANCELLED)
_SYNTHETIC = ("set_output", "ask_user")  # tools of the node itself: never recorded


@attrs.frozen
class ReplayReport:
    """What a replay found. ``difference``: the first one (where, recorded, replayed), None
    when identical. ``compared``: trace items compared. ``interrupted``: the session had not
    finished, so it was compared up to its latest checkpoint."""

    session_id: str
    identical: bool
    compared: int
    difference: str | None = None
    interrupted: bool = False

    def summary(self) -> str:
        scope = " up to where it was interrupted" if self.interrupted else ""
        if self.identical:
            return (f"session {self.session_id}: replay identical{scope} "
                    f"({self.compared} trace items compared)")
        return f"session {self.session_id}: replay differs{scope}: {self.difference}"


class OfflineLLM:
    """A model that refuses every call: during a replay every turn must be recorded."""

    async def stream(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        raise LLMError(f"replay: node {request.node_id!r} needs a model turn the session did "
                       "not record (it was interrupted here, or the replay took another path)")
        yield  # pragma: no cover - makes this an async generator


def offline_tools(registry: ToolRegistry, graph: GraphSpec) -> ToolRegistry:
    """Every tool of ``registry`` and every tool a node of ``graph`` names, with its schema
    where known, each refusing to run (a replay takes tool results from the records)."""
    names = set(registry.names())
    for node in graph.nodes:
        names.update(node.tools)
    tools = []
    for name in sorted(names):
        known = registry.get(name)

        async def refuse(_name: str = name, **_arguments: Any) -> str:
            raise ToolError(f"replay: tool {_name!r} is never called (its result was not "
                            "recorded)")

        tools.append(Tool(name=name, description=known.description if known else "",
                          parameters=known.parameters if known else {"type": "object"},
                          fn=refuse, idempotent=known.idempotent if known else True))
    return ToolRegistry(tools)


@attrs.frozen
class ReplayPlan:
    """What to replay: the session's entry point and input, the state it started from (a
    fork's checkpoint, with its session id made the replayed one's; None: from the start),
    the inputs of the resumes after each pause, in order, and whether it had not finished."""

    entry_point: str
    input_data: dict[str, Any]
    start_state: dict[str, Any] | None
    resume_inputs: tuple[dict[str, Any], ...]
    interrupted: bool
    steps: int  # recorded model turns, tool results and client input items


def prepare_replay(store: SessionStore, session_id: str, scratch: Path) -> ReplayPlan:
    """Copy what a replay needs of ``session_id`` (state.json made resumable, the step journal)
    into a scratch storage folder ``scratch``. Blocking: call in a worker thread."""
    record = store.read_state(session_id)
    target = SessionStore(scratch)
    folder = target.session_dir(session_id)
    (folder / "logs").mkdir(parents=True)
    fresh = record.evolve(status=ExecutionStatus.CANCELLED, output={}, error=None,
                          paused_at=None, current_node=None, checkpoint_seq=None, owner=None)
    target.state_path(session_id).write_bytes(target.state_op(fresh).data)
    journal = store.steps_path(session_id)
    if journal.exists():
        shutil.copyfile(journal, target.steps_path(session_id))
    records = store.read_steps(session_id)
    inputs = tuple(dict(r.get("input") or {}) for r in records if r.get("kind") == "resume")
    starts = [r["state"] for r in records if r.get("kind") == "start"]
    start = dict(starts[0], session_id=session_id) if starts else None
    steps = sum(len(r.get("items") or ()) if r.get("kind") == "input" else 1
                for r in records if r.get("kind") in ("turn", "tool", "input"))
    return ReplayPlan(record.entry_point, dict(record.input_data), start, inputs,
                      record.status in _INTERRUPTED, steps)


class StepsUsed:
    """Counts the recorded steps a replay used, from its events (a bus handler)."""

    TYPES = (EventType.LLM_TURN_COMPLETED, EventType.TOOL_CALL_COMPLETED,
             EventType.CLIENT_INPUT_RECEIVED)

    def __init__(self) -> None:
        self.n = 0

    def count(self, event: AgentEvent) -> None:
        data = event.data
        if data.get("replayed") and data.get("tool_name") not in _SYNTHETIC:
            self.n += 1


def session_trace(store: SessionStore, session_id: str, *,
                  upto_seq: int | None = None) -> list[tuple[str, Any]]:
    """The trace of a session as (where, value) items: per node its details lines; the
    latest checkpoint's (or checkpoint ``upto_seq``'s) conversations, visits, path and
    memory; the final state (left out with ``upto_seq``)."""
    folder = store.session_dir(session_id)
    items: list[tuple[str, Any]] = []
    per_node: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for line in read_jsonl(folder / "logs" / "details.jsonl"):
        per_node[str(line.get("node_id"))].append(
            {k: v for k, v in line.items() if k not in _VOLATILE})
    checkpoints = store.checkpoints(session_id)
    if upto_seq is not None:
        checkpoints = [c for c in checkpoints if c.seq <= upto_seq]
        done = set(checkpoints[-1].state.execution_path) if checkpoints else set()
        per_node = {n: lines for n, lines in per_node.items() if n in done}
    for node in sorted(per_node):
        for i, line in enumerate(per_node[node], 1):
            items.append((f"node {node!r} details line {i}", line))
    if checkpoints:
        cp = checkpoints[-1]
        state = cp.state
        items.append(("latest checkpoint", (cp.seq, cp.kind, cp.node_id)))
        for name in sorted(state.conversations):
            for i, message in enumerate(state.conversations[name]):
                items.append((f"conversation {name!r} message {i}", message))
            items.append((f"conversation {name!r} length", len(state.conversations[name])))
        items.append(("visit counts", state.node_visit_counts))
        items.append(("path (as a multiset)", sorted(state.execution_path)))
        items.append(("memory", state.memory))
    if upto_seq is None:
        record = store.read_state(session_id)
        for name, value in (("status", str(record.status)), ("output", record.output),
                            ("error", record.error), ("paused at", record.paused_at)):
            items.append((f"final {name}", value))
    return items


def compare_traces(recorded: Iterable[tuple[str, Any]],
                   replayed: Iterable[tuple[str, Any]]) -> tuple[int, str | None]:
    """(items compared, the first difference or None)."""
    mine, theirs = list(recorded), list(replayed)
    n = 0
    for (where, value), (where2, value2) in zip(mine, theirs):
        n += 1
        if where != where2:
            return n, f"{where}: recorded it, the replay has {where2} instead"
        if _canon(value) != _canon(value2):
            return n, f"{where}: recorded {_short(value)}, replayed {_short(value2)}"
    if len(mine) != len(theirs):
        longer, side = (mine, "recorded") if len(mine) > len(theirs) else (theirs, "replayed")
        return n, f"{longer[n][0]}: only the {side} trace has it ({_short(longer[n][1])})"
    return n, None


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _short(value: Any, limit: int = 300) -> str:
    text = _canon(value)
    return text if len(text) <= limit else text[:limit] + "..."
