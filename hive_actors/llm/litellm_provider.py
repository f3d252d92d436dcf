"""LiteLLMProvider: every real model call, through litellm, from trio.

How it runs. litellm is asyncio code; it runs on a trio-asyncio loop opened once per runtime
(``hive_actors.llm.aio_loop.open_llm_loop``), with the loop's default executor replaced so
``acompletion`` works at all (see aio_loop.py). Each streamed chunk is awaited with
``trio_asyncio.aio_as_trio``; cancelling the trio side cancels that asyncio await, which
aborts the HTTP request (the server sees the connection close), and the litellm stream is
closed under a short shielded scope. litellm is imported lazily, on the first model call, with
``LITELLM_LOCAL_MODEL_COST_MAP=True`` so it never fetches its cost map from the internet
(import ~3-4.5 s; ``import hive_actors`` stays fast). litellm >= 1.106 imports ``mcp`` when
``tools=`` is given; ``mcp`` is a dependency of hive_actors for that reason.

Why litellm and not a native trio HTTP client for OpenAI-compatible providers. Measured with
benchmarks/bench_llm_overhead.py (fake server on 127.0.0.1, 2 shared cores, 40-token replies
in 14 chunks; median per call):
  1 call at a time:   raw httpx-on-trio 2.7 ms, LiteLLMProvider 12.6 ms  (+9.9 ms)
  100 concurrent:     raw 97 ms, LiteLLMProvider 610 ms  (+513 ms, CPU bound: ~6 ms CPU per
                      call in litellm's chunk processing, serialised by the GIL)
A real model turn takes 0.3-30 s, so ~10 ms per call is below 3 % of a turn; at 100
concurrent calls on 2 cores the overhead is real, but one code path for every provider (key
handling, message translation, cost map) outweighs it for now. A native path for
``openai/`` models remains an option if CPU ever becomes the limit.

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
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

from ..errors import ConfigurationError, LLMError
from .aio_loop import current_llm_loop, prepare_loop
from .provider import Chunk, LLMRequest, StreamReset, TextDelta, TurnEnd, Usage
from .stream_assembly import ToolCallAssembler, field, usage_from, without_ghost_messages

DEFAULT_CONCURRENCY = 16
_RETRY_STATUS = {408, 409, 429}

_litellm_module: Any = None


def import_litellm() -> Any:
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
        **litellm_kwargs: Any,
    ) -> None:
        if not model:
            raise ConfigurationError("LiteLLMProvider: model must be a non-empty string")
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
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
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

    async def _attempt(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        """One HTTP call. Cancel scopes wrap only the awaits, never a ``yield``."""
        import trio_asyncio

        litellm = import_litellm()
        kwargs = self.call_kwargs(request)
        deadline = trio.current_time() + self.timeout
        response = await self._guarded(deadline, trio_asyncio.aio_as_trio(litellm.acompletion), **kwargs)
        try:
            tools = ToolCallAssembler()
            finish, raw_usage = None, None
            next_chunk = trio_asyncio.aio_as_trio(_next_or_none)
            while (chunk := await self._guarded(deadline, next_chunk, response)) is not None:
                raw_usage = field(chunk, "usage") or raw_usage
                for choice in field(chunk, "choices") or ():
                    delta = field(choice, "delta")
                    for fragment in field(delta, "tool_calls") or ():
                        tools.add(fragment)
                    finish = field(choice, "finish_reason") or finish
                    if text := field(delta, "content"):
                        yield TextDelta(text)
            for call in tools.calls():
                yield call
            usage = usage_from(raw_usage, _cost(litellm, kwargs["model"], raw_usage))
            yield TurnEnd(stop_reason=finish or ("tool_calls" if tools.calls() else "stop"), usage=usage)
        finally:
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + 2.0
                await trio_asyncio.aio_as_trio(response.aclose)()

    async def _guarded(self, deadline: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``await fn(...)`` by ``deadline``, mapping failures to ``_Retryable`` / ``LLMError``."""
        try:
            with trio.fail_at(deadline):
                return await fn(*args, **kwargs)
        except trio.TooSlowError:
            raise _Retryable(f"timed out after {self.timeout} s") from None
        except (trio.Cancelled, KeyboardInterrupt, _Retryable, LLMError):
            raise
        except Exception as exc:  # litellm/openai/httpx errors: classify
            raise _classify(self.model, exc) from exc


async def _next_or_none(response: Any) -> Any:
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
    headers: Any = getattr(exc, "litellm_response_headers", None)
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


def _cost(litellm: Any, model: str, raw_usage: Any) -> float | None:
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
