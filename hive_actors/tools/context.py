"""What a tool call knows about where it runs: the execution's context parameters and a
record the call fills in for the tool log.

Hive hides four *context parameters* from the model (`CONTEXT_PARAMS`) and fills them in at
call time, only those a tool's input schema declares. The executor sets `ToolContext` for an
execution (`use_tool_context`); child tasks inherit it. ``data_dir`` is
``{session folder}/data/``, created on first use.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = ["CONTEXT_PARAMS", "ToolContext", "call_record", "current_tool_context",
           "hide_context_params", "inject_context_params", "recording_call", "use_tool_context"]

CONTEXT_PARAMS = ("data_dir", "agent_id", "session_id", "workspace_id")


@attrs.frozen
class ToolContext:
    agent_id: str = ""
    session_id: str = ""
    session_dir: Path | None = None
    workspace_id: str = "default"

    def data_dir(self) -> str:
        """``{session folder}/data/`` (created now); an executor without storage gets
        ``{temp dir}/hive_actors-data/{session_id}/data``."""
        base = self.session_dir
        if base is None:
            name = re.sub(r"[^\w-]", "_", self.session_id) or "none"  # never a path
            base = Path(tempfile.gettempdir()) / "hive_actors-data" / name
        folder = base / "data"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)

    def value(self, name: str) -> str:
        if name == "data_dir":
            return self.data_dir()
        return str(getattr(self, name))


_CONTEXT: contextvars.ContextVar[ToolContext] = contextvars.ContextVar(
    "hive_actors_tool_context", default=ToolContext())
_RECORD: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "hive_actors_tool_record", default=None)


def current_tool_context() -> ToolContext:
    return _CONTEXT.get()


@contextlib.contextmanager
def use_tool_context(ctx: ToolContext) -> Iterator[None]:
    token = _CONTEXT.set(ctx)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


@contextlib.contextmanager
def recording_call() -> Iterator[dict[str, Any]]:
    """A dict the running tool may fill (server, arguments as sent) for its tool log line."""
    record: dict[str, Any] = {}
    token = _RECORD.set(record)
    try:
        yield record
    finally:
        _RECORD.reset(token)


def call_record() -> dict[str, Any]:
    """The current call's record (a throwaway dict outside `recording_call`)."""
    record = _RECORD.get()
    return record if record is not None else {}


def hide_context_params(schema: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``schema`` without the context parameters, and the ones it declared."""
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return dict(schema), ()
    declared = tuple(p for p in CONTEXT_PARAMS if p in props)
    if not declared:
        return dict(schema), ()
    visible = dict(schema)
    visible["properties"] = {k: v for k, v in props.items() if k not in declared}
    required = schema.get("required")
    if isinstance(required, list):
        visible["required"] = [r for r in required if r not in declared]
    return visible, declared


def inject_context_params(arguments: Mapping[str, Any], declared: tuple[str, ...]) -> dict[str, Any]:
    """``arguments`` with the declared context parameters set from the current context
    (what the model sent for them is replaced)."""
    out = dict(arguments)
    if declared:
        ctx = current_tool_context()
        for name in declared:
            out[name] = ctx.value(name)
    return out
