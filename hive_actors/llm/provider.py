"""The LLMProvider protocol: one streaming call per model turn, OpenAI-style messages.

Message format (plain dicts, as in OpenAI's chat API):
  {"role": "system" | "user" | "assistant" | "tool", "content": str | None}
  assistant messages may carry "tool_calls": [{"id", "type": "function",
      "function": {"name", "arguments": <JSON string>}}]
  tool messages carry "tool_call_id" and "content" (a string).
Tools are OpenAI tool schemas: {"type": "function", "function": {"name", "description",
"parameters": <JSON schema>}}.

A provider's ``stream(request)`` is an async iterator of chunks: ``TextDelta`` as text arrives,
``ToolCall`` once a call is fully assembled, ``StreamReset`` if the provider restarted the
turn after text was already yielded (consumers discard that turn's text so far), and exactly
one final ``TurnEnd``.

A provider that needs resources for as long as a runtime uses it (an event loop, a connection
pool) also has ``lifespan()``, returning an async context manager; the runtime enters it
around everything it runs, so the resources open and close with the runtime.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

import attrs


@attrs.frozen
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            cost,
        )


@attrs.frozen
class LLMRequest:
    messages: tuple[dict[str, Any], ...]
    tools: tuple[dict[str, Any], ...] = ()
    system: str = ""
    max_tokens: int | None = None
    model: str | None = None
    # context for scripted/test providers and logs; real providers ignore it
    node_id: str = ""
    output_keys: tuple[str, ...] = ()  # required output keys not yet set
    client_facing: bool = False
    session_id: str = ""  # the execution's session (ScriptedLLM plays its script per session)


@attrs.frozen
class TextDelta:
    text: str


@attrs.frozen
class ToolCall:
    id: str
    name: str
    # the raw JSON text as the model produced it; may be invalid JSON
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; raises ValueError for anything but a JSON object."""
        value = json.loads(self.arguments or "{}")
        if not isinstance(value, dict):
            raise ValueError("tool arguments must be a JSON object")
        return value


@attrs.frozen
class StreamReset:
    reason: str


@attrs.frozen
class TurnEnd:
    stop_reason: str = "stop"  # "stop" | "tool_calls" | "length" | ...
    usage: Usage = Usage()


Chunk = TextDelta | ToolCall | StreamReset | TurnEnd


@runtime_checkable
class LLMProvider(Protocol):
    def stream(self, request: LLMRequest) -> AsyncIterator[Chunk]: ...


def model_of(llm: LLMProvider, request: LLMRequest) -> str:
    """The model a request goes to: its own, else the provider's ``model``, else the
    provider's class name (ScriptedLLM)."""
    return request.model or getattr(llm, "model", None) or type(llm).__name__
