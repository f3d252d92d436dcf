"""LiteLLMProvider through litellm (under trio-asyncio) against the fake OpenAI server."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
import trio

from hive_actors.errors import ConfigurationError, LLMError
from hive_actors.llm import LLMRequest, StreamReset, TextDelta, ToolCall, TurnEnd, make_provider
from hive_actors.llm.aio_loop import open_llm_loop
from hive_actors.llm.litellm_provider import LiteLLMProvider

from fake_openai import FakeOpenAI, FakeScript, FakeToolCall, FakeUsage, Reply

# litellm 1.106 trips pydantic 2.11 deprecation warnings on every chunk
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm")

HELLO = LLMRequest(messages=({"role": "user", "content": "hi"},), system="[[fake:node_a]] be brief")
TOOLS = (
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}},
)


@pytest.fixture
async def server(nursery):
    fake = FakeOpenAI(FakeScript())
    await nursery.start(fake.run)
    return fake


@pytest.fixture(params=["native", "litellm"])
def transport(request):
    return request.param


@pytest.fixture
async def loop():
    async with open_llm_loop() as aio_loop:
        yield aio_loop


def provider(server: FakeOpenAI, transport: str, model: str = "openai/gpt-4o-mini", **kw) -> LiteLLMProvider:
    kw.setdefault("backoff_base", 0.001)
    kw["transport"] = transport
    kw.setdefault("timeout", 10.0)
    return LiteLLMProvider(model, api_base=server.base_url, api_key="sk-test", **kw)


async def collect(p: LiteLLMProvider, request: LLMRequest = HELLO) -> list:
    return [chunk async for chunk in p.stream(request)]


def visible_text(chunks: list) -> str:
    """What a consumer shows: text since the last StreamReset."""
    text = ""
    for chunk in chunks:
        if isinstance(chunk, StreamReset):
            text = ""
        elif isinstance(chunk, TextDelta):
            text += chunk.text
    return text


async def test_text_streams_as_ordered_deltas_then_one_turn_end(server, loop, transport):
    server.add("node_a", Reply(text="The quick brown fox jumps.", chunk_chars=4))
    chunks = await collect(provider(server, transport))
    deltas = [c.text for c in chunks if isinstance(c, TextDelta)]
    assert len(deltas) == 7 and "".join(deltas) == "The quick brown fox jumps."
    assert isinstance(chunks[-1], TurnEnd) and chunks[-1].stop_reason == "stop"
    assert sum(isinstance(c, TurnEnd) for c in chunks) == 1
    sent = server.requests[0].body
    assert sent["messages"][0] == {"role": "system", "content": "[[fake:node_a]] be brief"}
    assert sent["stream"] is True


async def test_two_streamed_tool_calls_in_one_turn_are_both_assembled(server, loop, transport):
    server.add(
        "node_a",
        Reply(
            text="Let me check.",
            tool_calls=(
                FakeToolCall("lookup", '{"city": "Paris", "units": "metric"}', id="call_a"),
                FakeToolCall("add", '{"a": 1, "b": 2}', id="call_b"),
            ),
            chunk_chars=5,
        ),
    )
    request = LLMRequest(messages=HELLO.messages, system=HELLO.system, tools=TOOLS)
    chunks = await collect(provider(server, transport), request)
    calls = [c for c in chunks if isinstance(c, ToolCall)]
    assert calls == [
        ToolCall("call_a", "lookup", '{"city": "Paris", "units": "metric"}'),
        ToolCall("call_b", "add", '{"a": 1, "b": 2}'),
    ]
    assert calls[0].parsed_arguments() == {"city": "Paris", "units": "metric"}
    assert chunks[-1].stop_reason == "tool_calls"
    # the schemas reach the provider whole
    assert server.requests[0].body["tools"] == list(TOOLS)


async def test_rate_limit_is_retried_once_after_retry_after(server, loop, transport):
    server.add("node_a", Reply(status=429, retry_after="0.05"), Reply(text="ok now"))
    retries = []
    chunks = await collect(provider(server, transport, on_retry=lambda *a: retries.append(a)))
    assert visible_text(chunks) == "ok now"
    assert len(server.requests) == 2
    assert len(retries) == 1
    attempt, delay, reason = retries[0]
    assert attempt == 1 and delay == 0.05 and "429" in reason
    assert not any(isinstance(c, StreamReset) for c in chunks)  # nothing was shown yet


async def test_dropped_stream_is_retried_with_reset_and_no_duplicated_text(server, loop, transport):
    server.add(
        "node_a",
        Reply(text="Hello there, world", chunk_chars=3, drop_after=4),
        Reply(text="Hello there, world", chunk_chars=3),
    )
    chunks = await collect(provider(server, transport))
    resets = [i for i, c in enumerate(chunks) if isinstance(c, StreamReset)]
    assert len(resets) == 1
    before = "".join(c.text for c in chunks[: resets[0]] if isinstance(c, TextDelta))
    assert before and "Hello there, world".startswith(before)
    assert visible_text(chunks) == "Hello there, world"
    assert len(server.requests) == 2


async def test_server_errors_give_llm_error_after_the_retries(server, loop, transport):
    server.add("node_a", *[Reply(status=500)] * 3)
    with pytest.raises(LLMError, match="gave up after 3 attempts"):
        await collect(provider(server, transport, max_retries=2))
    assert len(server.requests) == 3


async def test_client_errors_are_not_retried(server, loop, transport):
    server.add("node_a", Reply(status=400, error_message="bad request body"))
    with pytest.raises(LLMError, match="bad request body"):
        await collect(provider(server, transport))
    assert len(server.requests) == 1


async def test_a_stalled_attempt_times_out_and_is_retried(server, loop, transport):
    server.add("node_a", Reply(text="late", first_byte_delay=30), Reply(text="on time"))
    chunks = await collect(provider(server, transport, timeout=0.3))
    assert visible_text(chunks) == "on time"
    await server.requests[0].finished.wait()
    assert server.requests[0].closed_early


async def test_cancelling_the_consumer_closes_the_connection(server, loop, transport):
    server.add("node_a", Reply(text="one two three four", chunk_chars=2, hang_after=3))
    p = provider(server, transport)
    got = []
    with trio.CancelScope() as scope:
        async for chunk in p.stream(HELLO):
            got.append(chunk)
            if len(got) == 2:
                scope.cancel()
    assert [c.text for c in got] == ["on", "e "]
    with trio.fail_after(5):
        await server.requests[0].finished.wait()
    assert server.requests[0].closed_early
    assert p.limiter.borrowed_tokens == 0
    assert not [t for t in asyncio.all_tasks(loop) if not t.done()]


async def test_usage_and_cost_are_reported_per_turn(server, loop, transport):
    usage = FakeUsage(prompt_tokens=1200, completion_tokens=80, cached_tokens=1000)
    server.add("node_a", Reply(text="hi", usage=usage), Reply(text="hi", usage=usage))
    end = (await collect(provider(server, transport)))[-1]
    assert (end.usage.input_tokens, end.usage.output_tokens, end.usage.cached_tokens) == (1200, 80, 1000)
    assert end.usage.cost_usd is not None and end.usage.cost_usd > 0
    unknown = (await collect(provider(server, transport, model="openai/no-such-model-xyz")))[-1]
    assert unknown.usage.input_tokens == 1200 and unknown.usage.cost_usd is None


async def test_concurrent_calls_share_the_limiter(server, loop, transport):
    server.load(FakeScript(fallback=Reply(text="x", first_byte_delay=0.05)))
    limiter = trio.CapacityLimiter(2)
    p = provider(server, transport, concurrency_limiter=limiter)
    peak = 0

    async def one() -> None:
        nonlocal peak
        async for _ in p.stream(HELLO):
            peak = max(peak, limiter.borrowed_tokens)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
    assert peak == 2 and limiter.borrowed_tokens == 0
    assert len(server.requests) == 5


async def test_stream_outside_an_llm_loop_is_a_configuration_error(server, transport):
    with pytest.raises(ConfigurationError, match="open_llm_loop"):
        await collect(provider(server, transport))


def test_missing_api_key_is_a_configuration_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        make_provider("openai/gpt-4o-mini")
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        make_provider("anthropic/claude-3-5-haiku-latest")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert make_provider("openai/gpt-4o-mini", max_retries=1).max_retries == 1
    assert make_provider("anthropic/x", api_key="sk-ant-test").api_key == "sk-ant-test"
    assert make_provider("ollama/llama3").model == "ollama/llama3"  # local: no key needed
    with pytest.raises(ConfigurationError, match="non-empty"):
        make_provider("")


def test_importing_hive_actors_llm_does_not_import_litellm():
    code = "import sys, hive_actors.llm; assert 'litellm' not in sys.modules, 'litellm imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_openai_model_is_checked_and_built_without_importing_litellm():
    code = (
        "import os, sys; os.environ['OPENAI_API_KEY'] = 'sk-test'\n"
        "from hive_actors.llm import make_provider\n"
        "p = make_provider('openai/gpt-4o-mini')\n"
        "assert p.uses_native_transport() and 'litellm' not in sys.modules, 'litellm imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
