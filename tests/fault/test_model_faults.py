"""Model faults against the fake OpenAI server (LiteLLMProvider, native transport): 429
storms, stalls, garbage tool-call JSON, unknown tools, a model that never calls set_output.
Each ends in a node success after a retry or a clear node error, never a hang."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

from hive_actors.graph.executor import ExecutorConfig, GraphExecutor
from hive_actors.graph.spec import Goal, GraphSpec, NodeSpec
from hive_actors.llm.aio_loop import open_llm_loop
from hive_actors.llm.litellm_provider import LiteLLMProvider

sys.path.insert(0, str(Path(__file__).parents[1]))
from fake_openai import FakeOpenAI, FakeScript, FakeToolCall, Reply  # noqa: E402

GOAL = Goal(id="answer")
BOUND = 30  # seconds: any of these taking longer is a hang


def one_node_graph(max_iterations: int = 4) -> GraphSpec:
    node = NodeSpec(id="ask", node_type="event_loop", system_prompt="[[fake:ask]] answer",
                    output_keys=("answer",))
    return GraphSpec(id="model_faults", entry_node="ask", nodes=(node,),
                     loop_config={"max_iterations": max_iterations})


def set_answer(value: str = "42") -> Reply:
    return Reply(tool_calls=(FakeToolCall("set_output", f'{{"key": "answer", "value": "{value}"}}'),))


@pytest.fixture
async def server(nursery):
    fake = FakeOpenAI(FakeScript())
    await nursery.start(fake.run)
    return fake


async def run(server: FakeOpenAI, *replies: Reply, max_iterations: int = 4, **provider_kw):
    server.add("ask", *replies)
    provider_kw.setdefault("max_retries", 3)
    provider_kw.setdefault("timeout", 10.0)
    llm = LiteLLMProvider("openai/fake-model", api_base=server.base_url, api_key="sk-test",
                          backoff_base=0.001, transport="native", **provider_kw)
    ex = GraphExecutor(llm=llm, config=ExecutorConfig(retry_delay_override=0.0))
    with trio.fail_after(BOUND):
        async with open_llm_loop():
            return await ex.execute(one_node_graph(max_iterations), GOAL, {})


async def test_429_storm_shorter_than_the_retry_budget_is_retried_to_success(server):
    storm = [Reply(status=429, retry_after="0") for _ in range(3)]
    result = await run(server, *storm, set_answer(), Reply(text="done"))
    assert result.status == "completed" and result.output["answer"] == 42


async def test_429_storm_longer_than_the_retry_budget_is_a_clear_node_error(server):
    storm = [Reply(status=429, retry_after="0", error_message="slow down") for _ in range(10)]
    result = await run(server, *storm, max_retries=2)
    assert result.status == "failed"
    assert "ask" in result.error and "429" in result.error, result.error


async def test_stalled_stream_times_out_and_is_a_clear_node_error(server):
    stall = Reply(text="partial answer that never ends", hang_after=1)
    result = await run(server, stall, stall, timeout=0.5, max_retries=1)
    assert result.status == "failed"
    assert "ask" in result.error and "tim" in result.error.lower(), result.error


async def test_garbage_tool_arguments_go_back_to_the_model_which_recovers(server):
    garbage = Reply(tool_calls=(FakeToolCall("set_output", '{"key": "answer", "value": '),))
    result = await run(server, garbage, set_answer("7"), Reply(text="done"))
    assert result.status == "completed" and result.output["answer"] == 7
    # the model was told what was wrong with its call
    later = server.requests[1].body["messages"]
    tool_results = [m for m in later if m.get("role") == "tool"]
    assert tool_results and "error" in tool_results[-1]["content"].lower()


async def test_unknown_tool_name_is_an_error_result_not_a_crash(server):
    unknown = Reply(tool_calls=(FakeToolCall("launch_rockets", "{}"),))
    result = await run(server, unknown, set_answer(), Reply(text="done"))
    assert result.status == "completed"
    later = server.requests[1].body["messages"]
    assert any("launch_rockets" in str(m.get("content")) for m in later if m.get("role") == "tool")


async def test_model_that_never_calls_set_output_fails_at_max_iterations(server):
    chatter = [Reply(text="I am thinking about it.") for _ in range(10)]
    result = await run(server, *chatter, max_iterations=3)
    assert result.status == "failed"
    assert "max_iterations (3)" in result.error and "answer" in result.error, result.error


async def test_model_that_always_sends_garbage_fails_at_max_iterations(server):
    garbage = [Reply(tool_calls=(FakeToolCall("set_output", "not json at all"),))
               for _ in range(10)]
    result = await run(server, *garbage, max_iterations=3)
    assert result.status == "failed" and "max_iterations" in result.error
