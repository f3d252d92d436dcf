"""Checkpoints and state.json recorded as deltas: what changed, not the whole file.

A node boundary's checkpoint goes to the journal as a ``delta`` `FileOp` (its path is the
checkpoint file's): the base checkpoint's file name and what differs from it (memory values
written, path steps added, visit counts, conversation messages added, the small fields). The
view materialises the whole file from the base and the delta (`Materialiser`), so the seed's
checkpoint files appear exactly as before, while the cost on the event loop no longer grows
with the state. A state.json change is a ``delta`` op too: the fields set (``patch``), the
file as it stands being the base. `materialise_ops` turns deltas into plain ``write`` ops
for anyone who needs files (a backend that only knows ``write`` and ``append``).

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

__all__ = ["CHECKPOINT_SCHEMA_VERSION", "Materialiser", "encode_delta", "materialise_ops",
           "patch_bytes", "state_delta"]

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
    # JSON types go to the C encoder as they are; records and the like through the converter
    return json.dumps(delta, ensure_ascii=False, default=converter.unstructure).encode("utf-8")


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


def patch_bytes(patch: dict[str, Any]) -> bytes:
    """A ``delta`` op's data that sets the top-level fields ``patch`` (already unstructured)
    in a whole JSON object file (state.json), the file as it stands being the base."""
    return json.dumps({"patch": patch}, ensure_ascii=False).encode("utf-8")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _read(path: Path) -> bytes:
    return path.read_bytes()


class Materialiser:
    """Turns delta ops into whole files: a checkpoint from its base checkpoint and the
    delta, a patched file (state.json) from its current contents and the fields set. Keeps
    the newest contents it produced (up to ``keep`` files of each sort) so a base is rarely
    read back; otherwise ``read`` reads it (the view's file: its record came first; a
    backend that keeps rows passes its own). Not thread-safe: one applier uses it."""

    def __init__(self, keep: int = 4096, read: Callable[[Path], bytes] = _read) -> None:
        self._states: OrderedDict[Path, dict[str, Any]] = OrderedDict()  # checkpoints
        self._files: OrderedDict[Path, dict[str, Any]] = OrderedDict()  # patched files
        self._keep = keep
        self._read = read

    def write_of(self, op: FileOp) -> FileOp:
        """The whole-file write ``op`` (a delta) stands for. Raises `CorruptFileError`
        naming the base if it cannot be read, or the delta if it does not parse."""
        d = self._parse(op)
        if "patch" in d:
            return FileOp.write(op.path, _dumps(self._patched(op.path, d["patch"], {})))
        return self._checkpoint(op, d)

    def prepare(self, ops: Sequence[FileOp],
                on_error: Callable[[CorruptFileError], None] | None = None) -> list[FileOp]:
        """``ops`` with every delta materialised, in order, without the whole-file writes a
        later write of the same file replaces (a file patched several times is encoded
        once). A delta that cannot be materialised raises `CorruptFileError`, or
        (``on_error``) is reported to it and left out."""
        out: list[FileOp | tuple[Path, dict[str, Any]] | None] = []
        last: dict[Path, int] = {}
        pending: dict[Path, bytes] = {}  # whole writes of this call, not on disk yet
        for op in ops:
            if op.kind == "append":
                out.append(op)
                continue
            new: FileOp | tuple[Path, dict[str, Any]]
            try:
                if op.kind == "write":
                    self._files.pop(op.path, None)
                    pending[op.path] = op.data
                    new = op
                else:
                    d = self._parse(op)
                    if "patch" in d:
                        new = (op.path, self._patched(op.path, d["patch"], pending))
                    else:
                        new = self._checkpoint(op, d)
            except CorruptFileError as exc:
                if on_error is None:
                    raise
                on_error(exc)
                continue
            at = last.get(op.path)
            if at is not None:
                out[at] = None
            last[op.path] = len(out)
            out.append(new)
        return [item if isinstance(item, FileOp) else FileOp.write(item[0], _dumps(item[1]))
                for item in out if item is not None]

    @staticmethod
    def _parse(op: FileOp) -> dict[str, Any]:
        try:
            d = json.loads(op.data)
            if not isinstance(d, dict):
                raise ValueError("not an object")
            return d
        except ValueError as exc:
            raise CorruptFileError(str(op.path), f"unreadable delta ({exc})") from None

    def _patched(self, path: Path, patch: dict[str, Any],
                 pending: dict[Path, bytes]) -> dict[str, Any]:
        base = self._files.get(path)
        if base is None:
            raw = pending.get(path)
            try:
                base = json.loads(raw if raw is not None else self._read(path))
            except (OSError, ValueError) as exc:
                raise CorruptFileError(str(path), f"base of a patch unreadable ({exc})"
                                       ) from None
            if not isinstance(base, dict):
                raise CorruptFileError(str(path), "base of a patch is not an object")
        new = {**base, **patch}
        self._remember(self._files, path, new)
        return new

    def _checkpoint(self, op: FileOp, d: dict[str, Any]) -> FileOp:
        try:
            if "state" in d:
                state = d["state"]
            else:
                state = _apply(self._base(op.path.parent / d["base"]), d)
            data = {"schema_version": CHECKPOINT_SCHEMA_VERSION, "seq": d["seq"],
                    "kind": d["kind"], "node_id": d["node_id"],
                    "created_at": d["created_at"], "state": state}
            raw = _dumps(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptFileError(str(op.path), f"unreadable checkpoint delta ({exc!r})") from None
        self._remember(self._states, op.path, state)
        return FileOp.write(op.path, raw)

    def _base(self, path: Path) -> dict[str, Any]:
        state = self._states.get(path)
        if state is not None:
            return state
        try:
            raw = json.loads(self._read(path))
            base: dict[str, Any] = raw["state"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptFileError(str(path), f"base of a checkpoint delta unreadable ({exc})"
                                   ) from None
        return base

    def _remember(self, cache: OrderedDict[Path, dict[str, Any]], path: Path,
                  value: dict[str, Any]) -> None:
        cache[path] = value
        cache.move_to_end(path)
        while len(cache) > self._keep:  # bounded; an evicted base is read back
            cache.popitem(last=False)


def materialise_ops(ops: Sequence[FileOp], materialiser: Materialiser | None = None
                    ) -> list[FileOp]:
    """``ops`` with every delta replaced by the whole-file write it stands for, in order
    (what a backend that knows only ``write`` and ``append`` stores). Raises
    `CorruptFileError` for a delta that cannot be materialised."""
    m = materialiser or Materialiser()
    return [op if op.kind != "delta" else m.write_of(op) for op in ops]
