"""Pure helpers for turning streamed OpenAI-style chunks into provider chunks.

``ToolCallAssembler`` joins tool-call fragments; ``usage_from`` reads a usage record. Both take
plain attribute-or-dict objects (litellm's pydantic chunks or parsed JSON), no I/O.
"""

from __future__ import annotations

from typing import Any

import attrs

from .provider import ToolCall, Usage


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` or ``obj[name]``, whichever exists; ``default`` otherwise."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


@attrs.define
class _Slot:
    id: str = ""
    name: str = ""
    arguments: list[str] = attrs.field(factory=list)


@attrs.define
class ToolCallAssembler:
    """Collects tool-call fragments of one turn; ``calls()`` gives them in arrival order.

    Fragments are keyed by ``index``. A fragment that carries an id different from the id
    already at its index starts a new call (some providers send index 0 for every parallel
    call).
    """

    _slots: list[_Slot] = attrs.field(factory=list)
    _by_index: dict[int, _Slot] = attrs.field(factory=dict)

    def add(self, fragment: Any) -> None:
        index = field(fragment, "index", 0) or 0
        call_id = field(fragment, "id") or ""
        function = field(fragment, "function")
        slot = self._by_index.get(index)
        if slot is None or (call_id and slot.id and call_id != slot.id):
            slot = _Slot()
            self._slots.append(slot)
            self._by_index[index] = slot
        if call_id and not slot.id:
            slot.id = call_id
        name = field(function, "name")
        if name and not slot.name:
            slot.name = name
        arguments = field(function, "arguments")
        if arguments:
            slot.arguments.append(arguments)

    def calls(self) -> list[ToolCall]:
        """The assembled calls; a call without an id gets ``call_<n>``."""
        return [
            ToolCall(id=s.id or f"call_{n}", name=s.name, arguments="".join(s.arguments) or "{}")
            for n, s in enumerate(self._slots)
        ]


def usage_from(raw: Any, cost_usd: float | None = None) -> Usage:
    """A ``Usage`` from an OpenAI/litellm usage object (None gives zeros)."""
    if raw is None:
        return Usage(cost_usd=cost_usd)
    details = field(raw, "prompt_tokens_details")
    cached = field(details, "cached_tokens") or field(raw, "cache_read_input_tokens") or 0
    return Usage(
        input_tokens=int(field(raw, "prompt_tokens") or 0),
        output_tokens=int(field(raw, "completion_tokens") or 0),
        cached_tokens=int(cached),
        cost_usd=cost_usd,
    )


def without_ghost_messages(messages: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """The messages minus assistant messages with neither content nor tool calls (several
    providers reject those)."""
    return [
        m
        for m in messages
        if not (m.get("role") == "assistant" and not m.get("content") and not m.get("tool_calls"))
    ]
