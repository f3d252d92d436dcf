"""LiteLLMProvider: every real model call, from trio, through litellm or natively.

How the litellm transport runs. litellm is asyncio code; it runs on a trio-asyncio loop
opened once per runtime (``hive_actors.llm.aio_loop.open_llm_loop``), with the loop's default executor replaced so
``acompletion`` works at all (see aio_loop.py). Each streamed chunk is awaited with
``trio_asyncio.aio_as_trio``; cancelling the trio side cancels that asyncio await, which
aborts the HTTP request (the server sees the connection close), and the litellm stream is
closed under a short shielded scope. litellm is imported lazily, on the first model call, with
``LITELLM_LOCAL_MODEL_COST_MAP=True`` so it never fetches its cost map from the internet
(import ~3-4.5 s; ``import hive_actors`` stays fast). litellm >= 1.106 imports ``mcp`` when
``tools=`` is given; ``mcp`` is a dependency of hive_actors for that reason.

Transports, chosen on measurements (benchmarks/bench_llm_overhead.py: fake server in a
subprocess on 127.0.0.1, 2 cores shared with other work, so figures are noisy; median latency
per streamed call, and client CPU per call):
                               raw httpx     native          litellm (trio-asyncio)
  13 chunks, 1 at a time       2.0-2.6 ms    3.3-4.3 ms      26-37 ms    (CPU 23-25 ms)
  13 chunks, 100 concurrent    0.19 s        0.55-0.79 s     2.8-3.9 s   (CPU 23 ms vs 3 ms)
  500 chunks, 1 at a time      20 ms         24 ms           385 ms      (CPU 305 ms vs 16 ms)
  500 chunks, 20 concurrent    0.39 s        0.83 s          8.1 s
litellm's per-chunk processing costs ~0.6 ms of CPU per chunk, so 100 agents streaming at
once would saturate a core on litellm alone. Hence: ``openai/...`` models (OpenAI and any
OpenAI-compatible server) go straight to the HTTP API from trio (openai_native.py, httpx on
trio, no asyncio); every other provider goes through litellm, which translates its API.
``transport="litellm"`` / ``"native"`` overrides the choice.

Retries: 429, 408/409, 5xx, connection errors, mid-stream drops and the per-attempt timeout are
retried with exponential backoff and jitter (``Retry-After`` / ``retry-after-ms`` honoured
exactly, up to ``max_retry_after``). If text was already yielded in the failed attempt, a
``StreamReset`` is yielded before the retry so consumers discard it (no duplicated output).
Other errors, and the last failure, raise ``LLMError``.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, ParamSpec, Protocol, TypeVar

import trio

from ..errors import ConfigurationError, LLMError
from .aio_loop import current_llm_loop, prepare_loop
from .openai_native import NativeCall, build_call, cost_of
from .provider import Chunk, LLMRequest, StreamReset, TextDelta, TurnEnd, Usage
from .stream_assembly import ToolCallAssembler, field, usage_from, without_ghost_messages

DEFAULT_CONCURRENCY = 16
_RETRY_STATUS = {408, 409, 429}
_TRANSPORTS = ("auto", "litellm", "native")
# litellm's own options, never sent in a native request body
_LITELLM_ONLY = {"model", "timeout", "num_retries", "max_retries", "api_base", "api_key", "drop_params"}

_litellm_module: types.ModuleType | None = None

P = ParamSpec("P")
T = TypeVar("T")


def import_litellm() -> types.ModuleType:
    """litellm, imported once, offline cost map, quiet, no litellm-side retries."""
    global _litellm_module
    if _litellm_module is None:
        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        import litellm

        litellm.suppress_debug_info = True
        litellm.drop_params = True
        litellm.telemetry = False
        _litellm_module = litellm
    return _litellm_module


def is_native(model: str, transport: str = "auto") -> bool:
    """True when ``model`` on ``transport`` is called natively (no litellm): "auto" sends
    ``openai/...`` models natively."""
    if transport != "auto":
        return transport == "native"
    return model.startswith("openai/")


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class LiteLLMProvider:
    """An ``LLMProvider`` backed by litellm. Keyword arguments beyond the documented ones are
    passed to ``litellm.acompletion`` on every call.

    ``timeout`` bounds one attempt (request through last chunk), in seconds.
    ``concurrency_limiter`` bounds concurrent calls; a runtime passes one shared limiter,
    otherwise the provider has its own of ``DEFAULT_CONCURRENCY``.
    ``on_retry(attempt, delay, reason)`` is called before each retry sleep (logging).
    ``transport``: "auto" (``openai/...`` models go native, others through litellm),
    "litellm" or "native" (any OpenAI-compatible endpoint). On the native transport the extra
    keyword arguments become fields of the request body.
    """

    def __init__(
        self,
        model: str,
        api_base: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        max_retries: int = 4,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        max_retry_after: float = 120.0,
        concurrency_limiter: trio.CapacityLimiter | None = None,
        on_retry: Callable[[int, float, str], None] | None = None,
        transport: str = "auto",
        **litellm_kwargs: Any,
    ) -> None:
        if not model:
            raise ConfigurationError("LiteLLMProvider: model must be a non-empty string")
        if transport not in _TRANSPORTS:
            raise ConfigurationError(f"LiteLLMProvider: transport must be one of {_TRANSPORTS}, got {transport!r}")
        self.transport = transport
        self.model = model
        self.api_base = api_base
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.limiter = concurrency_limiter or trio.CapacityLimiter(DEFAULT_CONCURRENCY)
        self.on_retry = on_retry
        self.litellm_kwargs = litellm_kwargs

    def lifespan(self) -> AbstractAsyncContextManager[object]:
        """The asyncio loop (trio-asyncio) and HTTP pool this provider's calls need; the
        runtime enters it around its nursery (an app running the executor alone can enter
        ``hive_actors.llm.open_llm_loop()`` itself)."""
        from .aio_loop import open_llm_loop

        return open_llm_loop()

    def __repr__(self) -> str:
        return f"LiteLLMProvider(model={self.model!r}, api_base={self.api_base!r})"

    async def stream(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        """Stream one model turn: ``TextDelta``s, then ``ToolCall``s, then one ``TurnEnd``;
        a ``StreamReset`` precedes a retry after text was yielded.

        Raises ``ConfigurationError`` outside ``open_llm_loop()``, ``LLMError`` when the call
        fails for good.
        """
        loop = current_llm_loop()
        if loop is None:
            raise ConfigurationError(
                f"{self!r}: no asyncio loop for litellm; call the provider inside "
                "`async with hive_actors.llm.open_llm_loop():` (the runtime does this)"
            )
        prepare_loop(loop)
        token = object()  # the limiter borrower, valid even if another task closes us
        await self.limiter.acquire_on_behalf_of(token)
        try:
            attempt = 0
            while True:
                yielded_text = False
                try:
                    async for chunk in self._attempt(request):
                        yielded_text = yielded_text or isinstance(chunk, TextDelta)
                        yield chunk
                    return
                except _Retryable as exc:
                    if attempt >= self.max_retries:
                        raise LLMError(
                            f"model {self.model!r}: {exc.reason} "
                            f"(gave up after {attempt + 1} attempts)"
                        ) from exc
                    delay = self._delay(attempt, exc.retry_after)
                    if self.on_retry is not None:
                        self.on_retry(attempt + 1, delay, exc.reason)
                    if yielded_text:
                        yield StreamReset(f"retrying after: {exc.reason}")
                    await trio.sleep(delay)
                    attempt += 1
        finally:
            self.limiter.release_on_behalf_of(token)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        return ceiling * (0.5 + random.random() / 2)  # jitter: 50-100 % of the ceiling

    def call_kwargs(self, request: LLMRequest) -> dict[str, Any]:
        """The keyword arguments for ``litellm.acompletion`` for this request."""
        messages = without_ghost_messages(request.messages)
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        kwargs: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "timeout": self.timeout,
            "num_retries": 0,  # retries are ours: Retry-After, StreamReset
            "max_retries": 0,
            **self.litellm_kwargs,
        }
        if request.tools:
            kwargs["tools"] = list(request.tools)
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        return kwargs

    def uses_native_transport(self, request: LLMRequest | None = None) -> bool:
        """True when calls go straight to an OpenAI-compatible endpoint from trio."""
        return is_native((request and request.model) or self.model, self.transport)

    def _open_call(self, request: LLMRequest) -> _Transport:
        kwargs = self.call_kwargs(request)
        if self.uses_native_transport(request):
            payload = {k: v for k, v in kwargs.items() if k not in _LITELLM_ONLY}
            return _NativeTransport(build_call(kwargs["model"], self.api_base, self.api_key, payload), kwargs["model"])
        return _LiteLLMTransport(kwargs)

    async def _attempt(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        """One HTTP call. Cancel scopes wrap only the awaits, never a ``yield``."""
        call = self._open_call(request)
        deadline = trio.current_time() + self.timeout
        try:
            await self._guarded(deadline, call.open)
            tools = ToolCallAssembler()
            finish, raw_usage = None, None
            while (chunk := await self._guarded(deadline, call.next)) is not None:
                raw_usage = field(chunk, "usage") or raw_usage
                for choice in field(chunk, "choices") or ():
                    delta = field(choice, "delta")
                    for fragment in field(delta, "tool_calls") or ():
                        tools.add(fragment)
                    finish = field(choice, "finish_reason") or finish
                    if text := field(delta, "content"):
                        yield TextDelta(text)
            for tool_call in tools.calls():
                yield tool_call
            usage = usage_from(raw_usage, call.cost(raw_usage))
            yield TurnEnd(stop_reason=finish or ("tool_calls" if tools.calls() else "stop"), usage=usage)
        finally:
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + 2.0
                await call.aclose()

    async def _guarded(self, deadline: float, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """``await fn(...)`` by ``deadline``, mapping failures to ``_Retryable`` / ``LLMError``."""
        try:
            # a bare CancelScope, not trio.fail_at: this runs once per streamed chunk
            with trio.CancelScope(deadline=deadline):
                return await fn(*args, **kwargs)
        except (trio.Cancelled, KeyboardInterrupt, _Retryable, LLMError):
            raise
        except Exception as exc:  # litellm/openai/httpx errors: classify
            raise _classify(self.model, exc) from exc
        raise _Retryable(f"timed out after {self.timeout} s")  # the scope's deadline passed


class _Transport(Protocol):
    """One streamed model call: ``open()``, ``next()`` until None, ``aclose()``."""

    async def open(self) -> None: ...

    # A chunk: litellm's pydantic object or a parsed JSON dict, read through ``field()``.
    async def next(self) -> Any: ...

    async def aclose(self) -> None: ...

    def cost(self, raw_usage: Any) -> float | None: ...


class _LiteLLMTransport:
    """One ``litellm.acompletion`` stream, awaited from trio through trio-asyncio."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self._kwargs = kwargs
        self._litellm = import_litellm()
        self._response: Any = None  # litellm's CustomStreamWrapper (untyped, asyncio side)

    async def open(self) -> None:
        import trio_asyncio

        self._response = await trio_asyncio.aio_as_trio(self._litellm.acompletion)(**self._kwargs)

    async def next(self) -> Any:
        import trio_asyncio

        return await trio_asyncio.aio_as_trio(_next_or_none)(self._response)

    async def aclose(self) -> None:
        import trio_asyncio

        if self._response is not None:
            await trio_asyncio.aio_as_trio(self._response.aclose)()

    def cost(self, raw_usage: Any) -> float | None:
        return _cost(self._litellm, self._kwargs["model"], raw_usage)


class _NativeTransport:
    """One call to an OpenAI-compatible endpoint over httpx on trio (no asyncio)."""

    def __init__(self, call: NativeCall, model: str) -> None:
        self._call, self._model = call, model
        self.open, self.next, self.aclose = call.open, call.next, call.aclose

    def cost(self, raw_usage: Any) -> float | None:
        return cost_of(self._model, raw_usage)


async def _next_or_none(response: AsyncIterator[T]) -> T | None:
    try:
        return await response.__anext__()
    except StopAsyncIteration:
        return None


def _classify(model: str, exc: Exception) -> Exception:
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    message = str(exc).splitlines()[0][:300] if str(exc) else name
    if isinstance(status, int) and (status in _RETRY_STATUS or status >= 500):
        return _Retryable(f"{name} (HTTP {status}): {message}", _retry_after(exc))
    if status is None and ("Connection" in name or "Timeout" in name or isinstance(exc, OSError)):
        return _Retryable(f"{name}: {message}")
    return LLMError(f"model {model!r}: {name}: {message}")


def _retry_after(exc: Exception) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (seconds or HTTP date), if sent."""
    # whatever the library attached: a dict, httpx.Headers or litellm's own mapping
    headers: Any = getattr(exc, "litellm_response_headers", None) or getattr(exc, "headers", None)
    if not headers:
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return float(ms) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _cost(litellm: types.ModuleType, model: str, raw_usage: Any) -> float | None:
    """The turn's cost in USD if litellm knows the model's prices, else None."""
    if raw_usage is None:
        return None
    known = field(raw_usage, "cost")  # litellm >= 1.106 prices streamed usage itself
    if isinstance(known, (int, float)) and known > 0:
        return float(known)
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model,
            prompt_tokens=int(field(raw_usage, "prompt_tokens") or 0),
            completion_tokens=int(field(raw_usage, "completion_tokens") or 0),
        )
        return float(prompt_cost + completion_cost)
    except Exception:  # unknown model or price: cost is simply not known
        return None


__all__ = ["LiteLLMProvider", "import_litellm", "Usage"]
