"""Checkpoints recorded as deltas: what changed since the session's previous checkpoint.

A node boundary's checkpoint goes to the journal as a ``delta`` `FileOp` (its path is the
checkpoint file's): the base checkpoint's file name and what differs from it (memory values
written, path steps added, visit counts, conversation messages added, the small fields). The
view materialises the whole file from the base and the delta (`Materialiser`), so the seed's
checkpoint files appear exactly as before, while the cost on the event loop no longer grows
with the state. `materialise_ops` turns deltas into plain ``write`` ops for anyone who
needs files (replay, or a backend that only knows ``write`` and ``append``).

What counts as changed: a memory value that is a new object, or any container (dict, list,
set: it may have been changed in place); conversation messages after a prefix that is the
same objects as the base's (a message, once in a conversation, is not changed in place;
anything else rewrites that conversation whole). A checkpoint without a base (the first of
a store, a pause) records its whole state. Pure; no trio.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hive_actors.errors import CorruptFileError
from hive_actors.graph.result import SessionState
from hive_actors.serde import converter
from hive_actors.storage.commit import FileOp

__all__ = ["CHECKPOINT_SCHEMA_VERSION", "Materialiser", "encode_delta", "materialise_ops", "state_delta"]

_MISSING = object()
_CONTAINERS = (dict, list, set)
_SCALARS = ("session_id", "next_nodes", "paused_at", "resume_after", "waiting_input",
            "steps_executed", "total_tokens", "total_retries", "version")
CHECKPOINT_SCHEMA_VERSION = 1  # of the whole checkpoint files (checkpoint_store.py)


def state_delta(seq: int, kind: str, node_id: str | None, created_at: dt.datetime,
                state: SessionState, base: tuple[str, SessionState] | None) -> dict[str, Any]:
    """The delta of checkpoint ``seq`` against ``base`` (its file name and state), or its
    whole state when ``base`` is None, as values still to encode (`encode_delta`)."""
    head: dict[str, Any] = {"seq": seq, "kind": kind, "node_id": node_id,
                            "created_at": created_at.isoformat()}
    if base is None:
        head["state"] = state
        return head
    name, prev = base
    head["base"] = name
    old_mem = prev.memory
    head["memory"] = {k: v for k, v in state.memory.items()
                      if old_mem.get(k, _MISSING) is not v or isinstance(v, _CONTAINERS)}
    gone = [k for k in old_mem if k not in state.memory]
    if gone:
        head["memory_gone"] = gone
    path, old_path = state.execution_path, prev.execution_path
    if path[:len(old_path)] == old_path:
        head["path_added"] = path[len(old_path):]
    else:
        head["path"] = path
    head["visits"] = state.node_visit_counts  # small: one int per node
    conv: dict[str, Any] = {}
    added: dict[str, Any] = {}
    for key, msgs in state.conversations.items():
        old = prev.conversations.get(key)
        if old is not None and len(old) <= len(msgs) and all(
                a is b for a, b in zip(old, msgs)):
            if len(msgs) > len(old):
                added[key] = msgs[len(old):]
        else:
            conv[key] = msgs
    head["conversations"] = conv
    head["conversations_added"] = added
    gone = [k for k in prev.conversations if k not in state.conversations]
    if gone:
        head["conversations_gone"] = gone
    head["set"] = {k: getattr(state, k) for k in _SCALARS}
    return head


def encode_delta(delta: dict[str, Any]) -> bytes:
    """The bytes of a `state_delta`. Raises TypeError/ValueError for values JSON cannot
    hold (as encoding the whole checkpoint would)."""
    return json.dumps(converter.unstructure(delta), ensure_ascii=False).encode("utf-8")


def _apply(base: dict[str, Any], d: dict[str, Any]) -> dict[str, Any]:
    """The unstructured state of a delta ``d`` applied to ``base`` (not changed)."""
    state = dict(base)
    memory = dict(base["memory"])
    memory.update(d["memory"])
    for k in d.get("memory_gone", ()):
        memory.pop(k, None)
    state["memory"] = memory
    state["execution_path"] = (d["path"] if "path" in d
                               else [*base["execution_path"], *d["path_added"]])
    state["node_visit_counts"] = d["visits"]
    conversations = dict(base["conversations"])
    for k in d.get("conversations_gone", ()):
        conversations.pop(k, None)
    conversations.update(d["conversations"])
    for k, msgs in d["conversations_added"].items():
        conversations[k] = [*conversations[k], *msgs]
    state["conversations"] = conversations
    state.update(d["set"])
    return state


class Materialiser:
    """Turns delta ops into whole checkpoint files. Keeps the newest states it produced (up
    to ``keep`` sessions) so a base is rarely read back; otherwise the base file is read
    (it is in the view: its record came first). Not thread-safe: one applier uses it."""

    def __init__(self, keep: int = 4096) -> None:
        self._states: OrderedDict[Path, dict[str, Any]] = OrderedDict()
        self._keep = keep

    def write_of(self, op: FileOp) -> FileOp:
        """The whole-file write ``op`` (a delta) stands for. Raises `CorruptFileError`
        naming the base if it cannot be read, or the delta if it does not parse."""
        try:
            d = json.loads(op.data)
            if "state" in d:
                state = d["state"]
            else:
                base_path = op.path.parent / d["base"]
                state = _apply(self._base(base_path), d)
            data = {"schema_version": CHECKPOINT_SCHEMA_VERSION, "seq": d["seq"],
                    "kind": d["kind"], "node_id": d["node_id"],
                    "created_at": d["created_at"], "state": state}
            raw = json.dumps(data, ensure_ascii=False).encode("utf-8")
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptFileError(str(op.path), f"unreadable checkpoint delta ({exc!r})") from None
        self._remember(op.path, state)
        return FileOp.write(op.path, raw)

    def _base(self, path: Path) -> dict[str, Any]:
        state = self._states.get(path)
        if state is not None:
            return state
        try:
            raw = json.loads(path.read_bytes())
            base: dict[str, Any] = raw["state"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptFileError(str(path), f"base of a checkpoint delta unreadable ({exc})"
                                   ) from None
        return base

    def _remember(self, path: Path, state: dict[str, Any]) -> None:
        states = self._states
        states[path] = state
        states.move_to_end(path)
        # a session's older states are bases only of deltas already applied, except in a
        # fan-out (several saves on one base): keep a few per folder, bounded overall
        while len(states) > self._keep:
            states.popitem(last=False)


def materialise_ops(ops: Sequence[FileOp], materialiser: Materialiser | None = None,
                    on_error: Callable[[CorruptFileError], None] | None = None) -> list[FileOp]:
    """``ops`` with every delta replaced by the whole-file write it stands for, in order.
    A delta that cannot be materialised raises `CorruptFileError`, or (``on_error``) is
    reported to it and left out."""
    m = materialiser or Materialiser()
    out: list[FileOp] = []
    for op in ops:
        if op.kind != "delta":
            out.append(op)
            continue
        try:
            out.append(m.write_of(op))
        except CorruptFileError as exc:
            if on_error is None:
                raise
            on_error(exc)
    return out
