"""ScriptedLLM: per-node scripts, streaming chunks, autopilot, delay, resets, recording."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from hive_actors.errors import LLMError
from hive_actors.llm.provider import LLMRequest, StreamReset, TextDelta, ToolCall, TurnEnd
from hive_actors.llm.scripted import Reply, ScriptedLLM, call, plausible_value


async def collect(llm, request):
    return [chunk async for chunk in llm.stream(request)]


def req(node_id="n", output_keys=()):
    return LLMRequest(messages=({"role": "user", "content": "hi"},), node_id=node_id,
                      output_keys=output_keys)


async def test_replies_play_in_order_per_node_and_stream_in_chunks():
    llm = ScriptedLLM({"a": ["first reply", Reply("x", [call("set_output", key="k", value="v")])],
                       "b": ["bee"]}, chunk_size=4)
    chunks = await collect(llm, req("a"))
    assert [c.text for c in chunks if isinstance(c, TextDelta)] == ["firs", "t re", "ply"]
    assert isinstance(chunks[-1], TurnEnd) and chunks[-1].usage.total_tokens > 0
    assert [c.text for c in await collect(llm, req("b")) if isinstance(c, TextDelta)] == ["bee"]
    second = await collect(llm, req("a"))
    calls = [c for c in second if isinstance(c, ToolCall)]
    assert calls[0].name == "set_output" and json.loads(calls[0].arguments) == {"key": "k", "value": "v"}
    assert second[-1].stop_reason == "tool_calls"
    assert [r.node_id for r in llm.requests] == ["a", "b", "a"]
    assert len(llm.calls_for("a")) == 2


async def test_exhausted_script_without_autopilot_raises():
    with pytest.raises(LLMError, match="'n'"):
        await collect(ScriptedLLM({}), req("n"))


async def test_autopilot_sets_missing_outputs_or_says_done():
    llm = ScriptedLLM(autopilot=True)
    chunks = await collect(llm, req("n", ("summary", "needs_more_research")))
    calls = {json.loads(c.arguments)["key"]: json.loads(c.arguments)["value"]
             for c in chunks if isinstance(c, ToolCall)}
    assert calls == {"summary": "autopilot summary", "needs_more_research": "false"}
    done = await collect(llm, req("n"))
    assert [c.text for c in done if isinstance(c, TextDelta)] == ["Done."]


async def test_star_script_serves_any_node():
    llm = ScriptedLLM({"*": ["generic"]})
    assert [c.text for c in await collect(llm, req("zzz")) if isinstance(c, TextDelta)] == ["generic"]


async def test_delay_uses_trio_time(autojump_clock):
    llm = ScriptedLLM({"n": ["a"]}, delay=2.5)
    start = trio.current_time()
    await collect(llm, req())
    assert trio.current_time() - start == 2.5


async def test_reset_and_error_replies():
    llm = ScriptedLLM({"n": [Reply("abcdef", reset_after=1), Reply(error="boom")]}, chunk_size=2)
    chunks = await collect(llm, req())
    kinds = [type(c).__name__ for c in chunks]
    assert kinds[:2] == ["TextDelta", "StreamReset"] and isinstance(chunks[1], StreamReset)
    with pytest.raises(LLMError, match="boom"):
        await collect(llm, req())


async def test_from_file_reads_json_script(tmp_path):
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"n": [{"text": "hey", "tool_calls": [{"name": "ask_user", "arguments": {"question": "?"}}]}]}))
    chunks = await collect(ScriptedLLM.from_file(path), req())
    assert [c.name for c in chunks if isinstance(c, ToolCall)] == ["ask_user"]


def test_plausible_values():
    assert plausible_value("is_done") == "false"
    assert plausible_value("report") == "autopilot report"


async def test_concurrent_delays_end_together_and_survive_a_cancelled_sleeper(mock_clock):
    llm = ScriptedLLM({"*": ["x"] * 10}, delay=1.0)
    ended: list[float] = []
    first = trio.CancelScope()

    async def one(scope: trio.CancelScope) -> None:
        with scope:
            await collect(llm, req())
            ended.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, first)  # the first call of the millisecond holds the timer
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(4):
            nursery.start_soon(one, trio.CancelScope())
        await trio.testing.wait_all_tasks_blocked()
        first.cancel()  # cancelling the timer's holder must not strand the others
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(1.0)
    assert ended == [1.0] * 4


async def test_recorded_requests_are_bounded():
    llm = ScriptedLLM(autopilot=True, keep_requests=3)
    for i in range(10):
        await collect(llm, req(f"n{i}"))
    assert 3 <= len(llm.requests) <= 6
    assert llm.requests[-1].node_id == "n9"


async def test_a_fresh_scripted_model_resumes_a_visit_without_replaying_its_turns():
    # e.g. `hive-actors resume --scripted` in a new process: the conversation in the
    # checkpoint already holds the node's first turn, so the script goes on from its second
    from hive_actors.graph.executor import GraphExecutor
    from hive_actors.graph.spec import Goal, GraphSpec, NodeSpec

    script = {"ask": ["What topic?", Reply("Got it.", [call("set_output", key="topic",
                                                              value="trio")])]}
    graph = GraphSpec(id="g", entry_node="ask", nodes=(
        NodeSpec(id="ask", client_facing=True, output_keys=("topic",)),))
    first = await GraphExecutor(llm=ScriptedLLM(script)).execute(graph, Goal(id="g"), {})
    assert first.status == "paused" and first.paused_at == "ask"
    fresh = ScriptedLLM(script)  # nothing played yet, as in a new process
    result = await GraphExecutor(llm=fresh).execute(
        graph, Goal(id="g"), {"input": "trio please"}, session_state=first.session_state)
    assert result.status == "completed" and result.output == {"topic": "trio"}
    assert len(fresh.calls_for("ask")) == 1  # only the second scripted turn was asked for
