"""Calls to OpenAI-compatible chat-completions endpoints straight from trio (httpx, no asyncio).

Used by ``LiteLLMProvider`` for ``openai/...`` models (see the measurements in
litellm_provider.py). Keys and bases follow litellm's variables: ``OPENAI_API_KEY``,
``OPENAI_API_BASE`` / ``OPENAI_BASE_URL``. Prices come from the cost map file litellm ships,
read as JSON without importing litellm.

One ``httpx.AsyncClient`` (connection pool) per ``native_http_scope()`` block, which
``open_llm_loop()`` enters; it is created on first use and closed when the block ends.
The event stream is parsed by httpx-sse (multi-line data, comments, CRLF, ``event: error``).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ..errors import ConfigurationError
from .stream_assembly import field

if TYPE_CHECKING:  # imported lazily at run time: httpx is only needed once a native call is made
    import httpx
    import httpx_sse

DEFAULT_BASE = "https://api.openai.com/v1"


class HTTPStatusFailure(Exception):
    """A non-200 answer; ``status_code`` and ``headers`` are what the server sent."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers


class NativeConnectionError(OSError):
    """The connection failed or broke mid-stream."""


class StreamErrorEvent(Exception):
    """The server reported an error inside the event stream (after its 200 answer)."""


class _ClientHolder:
    def __init__(self) -> None:
        self.client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        if self.client is None:
            import httpx

            limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
            self.client = httpx.AsyncClient(timeout=None, limits=limits)
        return self.client


_holder: ContextVar[_ClientHolder | None] = ContextVar("hive_actors_native_http", default=None)


@asynccontextmanager
async def native_http_scope() -> AsyncIterator[None]:
    """Share one HTTP connection pool for native calls made inside the block."""
    if _holder.get() is not None:
        yield
        return
    holder = _ClientHolder()
    token = _holder.set(holder)
    try:
        yield
    finally:
        _holder.reset(token)
        if holder.client is not None:
            with trio.CancelScope(shield=True):
                await holder.client.aclose()


class NativeCall:
    """One streamed chat-completions request: ``open()``, ``next()`` until None, ``aclose()``."""

    def __init__(self, url: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        holder = _holder.get()
        if holder is None:
            raise ConfigurationError(
                "native OpenAI-compatible call outside `async with hive_actors.llm.open_llm_loop():`"
            )
        self._client = holder.get()
        self._url, self._headers, self._body = url, headers, body
        self._response: httpx.Response | None = None
        self._events: AsyncGenerator[httpx_sse.ServerSentEvent, None] | None = None

    async def open(self) -> None:
        import httpx
        import httpx_sse

        request = self._client.build_request("POST", self._url, json=self._body, headers=self._headers)
        try:
            response = self._response = await self._client.send(request, stream=True)
            if response.status_code != 200:
                raw = await response.aread()
                raise HTTPStatusFailure(response.status_code, _error_message(raw), dict(response.headers))
        except httpx.TransportError as exc:
            raise NativeConnectionError(f"{type(exc).__name__}: {exc}") from exc
        self._events = httpx_sse.EventSource(response).aiter_sse()

    async def next(self) -> dict[str, Any] | None:
        """The next parsed chunk; None after ``[DONE]``. A body that ends before ``[DONE]``
        raises ``NativeConnectionError``; an error event, or a body that is not an event
        stream, raises ``StreamErrorEvent``."""
        import httpx
        import httpx_sse

        if self._events is None:
            raise RuntimeError("NativeCall.next() before open()")
        try:
            async for event in self._events:
                data = event.data
                if data == "[DONE]":
                    return None
                if not data:
                    continue
                chunk: dict[str, Any] = json.loads(data)  # one chat.completion.chunk object
                if event.event == "error" or "error" in chunk:
                    raise StreamErrorEvent(_error_message(data.encode()))
                return chunk
        except httpx_sse.SSEError as exc:  # (a TransportError subclass) not worth a retry
            raise StreamErrorEvent(str(exc)) from None
        except httpx.TransportError as exc:
            raise NativeConnectionError(f"stream broke: {type(exc).__name__}: {exc}") from exc
        raise NativeConnectionError("stream ended before [DONE]")

    async def aclose(self) -> None:
        if self._events is not None:
            await self._events.aclose()
        if self._response is not None:
            await self._response.aclose()


def build_call(model: str, api_base: str | None, api_key: str | None, payload: dict[str, Any]) -> NativeCall:
    """A ``NativeCall`` for ``model`` ("openai/<name>" or "<name>") with litellm-style kwargs
    (``messages``, ``tools``, ``max_tokens``, ``stream_options``, extra body fields)."""
    base = api_base or os.environ.get("OPENAI_API_BASE") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE
    key = api_key or os.environ.get("OPENAI_API_KEY")
    body = dict(payload)
    body["model"] = model.removeprefix("openai/")
    body["stream"] = True
    if "max_tokens" in body and base.rstrip("/") == DEFAULT_BASE:
        body["max_completion_tokens"] = body.pop("max_tokens")  # OpenAI's current name
    headers = {"accept": "text/event-stream"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return NativeCall(base.rstrip("/") + "/chat/completions", headers, body)


def _error_message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return raw[:300].decode(errors="replace")


_PRICES: dict[str, Any] | None = None


def _prices() -> dict[str, Any]:
    global _PRICES
    if _PRICES is None:
        _PRICES = {}
        spec = importlib.util.find_spec("litellm")  # locates the package without importing it
        for folder in (spec.submodule_search_locations or []) if spec else []:
            path = Path(folder) / "model_prices_and_context_window_backup.json"
            if path.exists():
                _PRICES = json.loads(path.read_text())
                break
    return _PRICES


def cost_of(model: str, raw_usage: Any) -> float | None:
    """USD for this usage at the model's list prices (cached input at its own price), or None
    when the price is unknown."""
    if raw_usage is None:
        return None
    name = model.removeprefix("openai/")
    entry = _prices().get(name) or _prices().get(f"openai/{name}")
    if not entry or "input_cost_per_token" not in entry:
        return None
    prompt = int(field(raw_usage, "prompt_tokens") or 0)
    completion = int(field(raw_usage, "completion_tokens") or 0)
    cached = int(field(field(raw_usage, "prompt_tokens_details"), "cached_tokens") or 0)
    in_price = entry["input_cost_per_token"]
    cached_price = entry.get("cache_read_input_token_cost", in_price)
    out_price = entry.get("output_cost_per_token", 0.0)
    return float((prompt - cached) * in_price + cached * cached_price + completion * out_price)
