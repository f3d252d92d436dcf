"""The fake OpenAI server itself: non-streaming answers, key routing, script exhaustion."""

from __future__ import annotations

import httpx
import pytest

from fake_openai import FakeOpenAI, FakeScript, FakeToolCall, FakeUsage, Reply


@pytest.fixture
async def server(nursery):
    fake = FakeOpenAI(FakeScript({"writer": [Reply(text="drafted", tool_calls=(FakeToolCall("save", '{"n": 1}'),),
                                                   usage=FakeUsage(7, 3, 2))]}))
    await nursery.start(fake.run)
    return fake


async def post(url: str, body: dict) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{url}/chat/completions", json=body)


async def test_non_streaming_reply_follows_the_marker_and_carries_usage(server):
    body = {"model": "m", "messages": [{"role": "system", "content": "[[fake:writer]] you write"}]}
    answer = (await post(server.base_url, body)).json()
    choice = answer["choices"][0]
    assert choice["message"]["content"] == "drafted" and choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "save", "arguments": '{"n": 1}'}
    assert answer["usage"]["prompt_tokens"] == 7 and answer["usage"]["prompt_tokens_details"]["cached_tokens"] == 2
    assert server.requests[0].key == "writer"


async def test_a_used_up_script_answers_400_naming_the_key(server):
    response = await post(server.base_url, {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400 and "'default'" in response.json()["error"]["message"]
