"""A real agent through AgentRunner and LiteLLMProvider against the fake OpenAI server:
streamed client text in order, the runtime opening the provider's loop, usage and cost in
logs/summary.json."""

from __future__ import annotations

import json

import pytest
import trio

from hive_actors.llm.litellm_provider import LiteLLMProvider
from hive_actors.runner import AgentRunner
from hive_actors.events import EventType

from fake_openai import FakeOpenAI, FakeScript, FakeToolCall, FakeUsage, Reply

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm")

AGENT = {
    "agent": {"id": "greeter", "name": "Greeter"},
    "graph": {
        "id": "greeter-graph",
        "entry_node": "chat",
        "terminal_nodes": ["chat"],
        "nodes": [{
            "id": "chat", "name": "Chat", "description": "greets",
            "node_type": "event_loop", "client_facing": True, "output_keys": ["answer"],
            "system_prompt": "[[fake:chat]] Greet the user, then set the answer.",
        }],
        "edges": [],
    },
    "goal": {"id": "greet", "name": "Greet"},
}

SCRIPT = FakeScript({"chat": [Reply(
    text="Hello there, friend.",
    tool_calls=(FakeToolCall("set_output", json.dumps({"key": "answer", "value": "42"})),),
    usage=FakeUsage(prompt_tokens=120, completion_tokens=30, cached_tokens=100),
)]})


@pytest.fixture
async def server(nursery):
    fake = FakeOpenAI(SCRIPT)
    await nursery.start(fake.run)
    return fake


@pytest.mark.parametrize("transport", ["native", "litellm"])
async def test_agent_runs_through_the_provider_and_records_usage_and_cost(
    server, transport, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
    folder = tmp_path / "greeter"
    folder.mkdir()
    (folder / "agent.json").write_text(json.dumps(AGENT))
    if transport == "native":  # what `--model openai/gpt-4o-mini` builds: env configures it
        runner = AgentRunner.load(folder, model="openai/gpt-4o-mini", storage_path=tmp_path / "s")
    else:
        llm = LiteLLMProvider("openai/gpt-4o-mini", api_base=server.base_url, api_key="sk-test",
                              transport="litellm")
        runner = AgentRunner.load(folder, llm=llm, storage_path=tmp_path / "s")
    deltas: list[str] = []
    async with runner:  # the runtime enters the provider's lifespan (asyncio loop, HTTP pool)
        runner.runtime.subscribe_to_events(
            [EventType.CLIENT_OUTPUT_DELTA], lambda e: deltas.append(e.data["content"]),
            lossless=True)
        with trio.fail_after(30):
            result = await runner.run({})
        await trio.testing.wait_all_tasks_blocked()
    assert result.status == "completed", result.error
    assert result.output["answer"] == 42  # set_output JSON-decodes the value
    assert "".join(deltas) == "Hello there, friend."
    assert len(deltas) > 1  # it streamed, in order
    summary = json.loads((tmp_path / "s" / "sessions" / result.session_id / "logs" /
                          "summary.json").read_text())
    usage = summary["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["cached_tokens"]) == (120, 30, 100)
    assert usage["cost_usd"] is not None and usage["cost_usd"] > 0  # gpt-4o-mini has a price
