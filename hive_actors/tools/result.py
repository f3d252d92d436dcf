"""Tool results as the model sees them: `ToolOutput` (text, optional content parts, error
flag) and `tool_output(value)`, which reads whatever a tool returned, including Hive's
``ToolResult`` shape (``content``, ``is_error``)."""

from __future__ import annotations

from typing import Any

import attrs

from hive_actors.tools.registry import result_to_text

__all__ = ["ToolOutput", "tool_output"]


@attrs.frozen
class ToolOutput:
    """``text`` for logs and text-only models; ``parts`` (OpenAI content parts, e.g. an
    image) when the result is more than text."""

    text: str
    is_error: bool = False
    parts: tuple[dict[str, Any], ...] = ()


def tool_output(value: object) -> ToolOutput:
    """A tool's return value as a ToolOutput. An object with ``content`` and ``is_error``
    attributes (Hive's ToolResult, or anything shaped like it) is read as one."""
    if isinstance(value, ToolOutput):
        return value
    if (not isinstance(value, (str, bytes, dict, list, tuple))
            and hasattr(value, "content") and hasattr(value, "is_error")):
        return ToolOutput(result_to_text(getattr(value, "content")),
                          bool(getattr(value, "is_error")))
    return ToolOutput(result_to_text(value))
