"""LLM providers: the protocol, the litellm-backed provider and its factory.

litellm and trio-asyncio are imported only when a real provider is built or used.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from .provider import (
    Chunk,
    LLMProvider,
    LLMRequest,
    StreamReset,
    TextDelta,
    ToolCall,
    TurnEnd,
    Usage,
)
from .scripted import Reply, ScriptedLLM, call

if TYPE_CHECKING:
    from .litellm_provider import LiteLLMProvider


def make_provider(model: str, **kwargs: Any) -> LiteLLMProvider:
    """The provider for ``model``; see ``hive_actors.llm.factory.make_provider``."""
    from .factory import make_provider as _make

    return _make(model, **kwargs)


def open_llm_loop() -> AbstractAsyncContextManager[Any]:
    """``async with open_llm_loop():`` -- see ``hive_actors.llm.aio_loop.open_llm_loop``."""
    from .aio_loop import open_llm_loop as _open

    return _open()


def __getattr__(name: str) -> object:
    if name == "LiteLLMProvider":
        from .litellm_provider import LiteLLMProvider

        return LiteLLMProvider
    raise AttributeError(f"module 'hive_actors.llm' has no attribute {name!r}")


__all__ = [
    "Chunk",
    "LLMProvider",
    "LLMRequest",
    "LiteLLMProvider",
    "StreamReset",
    "TextDelta",
    "ToolCall",
    "TurnEnd",
    "Usage",
    "Reply",
    "ScriptedLLM",
    "call",
    "make_provider",
    "open_llm_loop",
]
