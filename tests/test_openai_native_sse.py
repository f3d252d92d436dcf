"""The native OpenAI path reads event streams as the SSE format defines them (httpx-sse):
CRLF line ends, comments, multi-line data, error events; a body that is no event stream is a
clear error."""

from __future__ import annotations

import functools

import pytest
import trio

from hive_actors.errors import LLMError
from hive_actors.llm import LLMRequest, TextDelta, TurnEnd
from hive_actors.llm.aio_loop import open_llm_loop
from hive_actors.llm.litellm_provider import LiteLLMProvider

HELLO = LLMRequest(messages=({"role": "user", "content": "hi"},))


async def _answer(body: bytes, content_type: str, stream: trio.SocketStream) -> None:
    received = b""
    while b"\r\n\r\n" not in received:
        received += await stream.receive_some()
    head, _, rest = received.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        rest += await stream.receive_some()
    await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type.encode()
                          + b"\r\nconnection: close\r\n\r\n" + body)
    await stream.aclose()


async def serve(nursery: trio.Nursery, body: str, content_type: str = "text/event-stream") -> str:
    handler = functools.partial(_answer, body.encode(), content_type)
    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/v1"


@pytest.fixture
async def loop():
    async with open_llm_loop() as aio_loop:
        yield aio_loop


async def stream_from(base: str) -> list:
    provider = LiteLLMProvider("openai/gpt-4o-mini", api_base=base, api_key="sk-test", max_retries=0)
    return [chunk async for chunk in provider.stream(HELLO)]


async def test_crlf_comments_and_multi_line_data_are_parsed(nursery, loop):
    body = (
        ": keep-alive\r\n\r\n"
        'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\r\n\r\n'
        'data: {"choices":[{"index":0,"delta":{"content":"lo"},\r\n'
        'data: "finish_reason":"stop"}],\r\n'
        'data: "usage":{"prompt_tokens":3,"completion_tokens":2}}\r\n\r\n'
        "data: [DONE]\r\n\r\n"
    )
    chunks = await stream_from(await serve(nursery, body))
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "Hello"
    end = chunks[-1]
    assert isinstance(end, TurnEnd) and end.stop_reason == "stop"
    assert (end.usage.input_tokens, end.usage.output_tokens) == (3, 2)


async def test_an_error_event_is_an_llm_error_with_the_servers_message(nursery, loop):
    body = 'event: error\ndata: {"error":{"message":"model overloaded"}}\n\n'
    with pytest.raises(LLMError, match="model overloaded"):
        await stream_from(await serve(nursery, body))


async def test_a_body_that_is_not_an_event_stream_is_an_llm_error_naming_its_type(nursery, loop):
    with pytest.raises(LLMError, match="application/json"):
        await stream_from(await serve(nursery, '{"choices": []}', "application/json"))


async def test_text_with_unicode_line_separators_arrives_whole(nursery, loop):
    # U+2028 and U+0085 are line breaks to str.splitlines (so to httpx's aiter_lines), never to SSE
    text = "a\u2028b\u0085c"
    body = ('data: {"choices":[{"index":0,"delta":{"content":"' + text + '"},"finish_reason":"stop"}]}\n\n'
            "data: [DONE]\n\n")
    chunks = await stream_from(await serve(nursery, body))
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == text
