"""The LLM loop of event_loop nodes, driven by ScriptedLLM."""

from __future__ import annotations

import json

import trio

from hive_actors.graph.executor import ExecutorConfig, GraphExecutor
from hive_actors.graph.spec import Constraint, Goal, SuccessCriterion
from hive_actors.llm.provider import LLMRequest
from hive_actors.llm.scripted import Reply, ScriptedLLM, call
from hive_actors.events import EventType, ListSink
from hive_actors.tools.registry import tool

from executor_support import GOAL, chain, graph, llm_node


def ex_with(llm, **kw):
    config = kw.pop("config", ExecutorConfig(retry_delay_override=0.0))
    return GraphExecutor(llm=llm, config=config, **kw)


async def test_set_output_value_is_json_decoded_and_node_succeeds():
    llm = ScriptedLLM({"n": [Reply("thinking", [call("set_output", key="result", value="42")])]})
    g = graph([llm_node("n", outputs=("result",))])
    result = await ex_with(llm).execute(g, GOAL, {})
    assert result.success and result.output["result"] == 42
    assert result.total_tokens > 0


async def test_text_only_node_without_outputs_succeeds_after_one_turn():
    llm = ScriptedLLM({"n": ["All done."]})
    result = await ex_with(llm).execute(graph([llm_node("n")]), GOAL, {})
    assert result.success and len(llm.requests) == 1


async def test_no_llm_is_a_clear_node_failure():
    result = await GraphExecutor().execute(graph([llm_node("n")]), GOAL, {})
    assert not result.success and "needs a model" in result.error


async def test_invalid_key_gets_error_result_then_valid_key_counts():
    llm = ScriptedLLM({"n": [Reply("", [call("set_output", key="nope", value="1"),
                                        call("set_output", key="ok", value="yes")])]})
    result = await ex_with(llm).execute(graph([llm_node("n", outputs=("ok",))]), GOAL, {})
    assert result.output["ok"] == "yes" and "nope" not in result.output


async def test_max_iterations_fails_with_clear_error():
    llm = ScriptedLLM({"n": ["hmm", "still thinking"]})
    g = graph([llm_node("n", outputs=("x",))], loop_config={"max_iterations": 2})
    result = await ex_with(llm).execute(g, GOAL, {})
    assert not result.success and "max_iterations (2)" in result.error and "'x'" in result.error


async def test_text_only_internal_turn_gets_a_nudge():
    llm = ScriptedLLM({"n": ["I will do it", Reply("", [call("set_output", key="x", value="1")])]})
    result = await ex_with(llm).execute(graph([llm_node("n", outputs=("x",))]), GOAL, {})
    assert result.success
    second = llm.requests[1].messages
    assert second[-1]["role"] == "user" and "set_output" in second[-1]["content"]


async def test_system_prompt_layers_and_first_message_carries_inputs():
    goal = Goal("g", name="Research", description="Find facts",
                success_criteria=(SuccessCriterion("c1", "facts found"),),
                constraints=(Constraint("k1", "be nice"),))
    node = llm_node("n", inputs=("topic",), outputs=("x",), system_prompt="You research.")
    g = graph([node], identity_prompt="You are Hive.")
    llm = ScriptedLLM(autopilot=True)
    await ex_with(llm).execute(g, goal, {"topic": "bees"})
    req = llm.requests[0]
    assert req.system.index("You are Hive.") < req.system.index("# Goal: Research") < req.system.index("You research.")
    assert "- topic: bees" in req.messages[0]["content"]
    names = [t["function"]["name"] for t in req.tools]
    assert names == ["set_output"]  # no ask_user for an internal node
    assert req.output_keys == ("x",)


async def test_tools_run_concurrently_and_errors_go_back_to_the_model(autojump_clock):
    active, peak = [0], [0]

    @tool
    async def slow_echo(text: str) -> str:
        """Echo after a pause."""
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await trio.sleep(1)
        active[0] -= 1
        return text

    @tool
    def boom() -> str:
        """Always fails."""
        raise ValueError("kaput")

    llm = ScriptedLLM({"n": [
        Reply("", [call("slow_echo", text="a"), call("slow_echo", text="b"), call("boom"),
                   call("nosuch"), ScriptedCallRaw("slow_echo", "{not json")]),
        Reply("", [call("set_output", key="x", value="done")]),
    ]})
    sink = ListSink()
    g = graph([llm_node("n", outputs=("x",), tools=("slow_echo", "boom"))])
    result = await ex_with(llm, tools=[slow_echo, boom], events=sink).execute(g, GOAL, {})
    assert result.success and peak[0] == 2
    tool_msgs = [m for m in llm.requests[1].messages if m["role"] == "tool"]
    contents = [m["content"] for m in tool_msgs]
    assert contents[0] == "a" and contents[1] == "b"
    assert contents[2].startswith("ERROR") and "kaput" in contents[2]
    assert contents[3].startswith("ERROR") and "unknown tool" in contents[3]
    assert contents[4].startswith("ERROR") and "JSON" in contents[4]
    started = [e for e in sink.events if e.type == EventType.TOOL_CALL_STARTED]
    completed = [e for e in sink.events if e.type == EventType.TOOL_CALL_COMPLETED]
    assert len(started) == 6 and len(completed) == 6
    assert [e.data["is_error"] for e in completed][:5] == [False, False, True, True, True]


def ScriptedCallRaw(name, raw):
    from hive_actors.llm.scripted import ScriptedCall

    return ScriptedCall(name, raw)


async def test_tool_timeout_becomes_an_error_result(autojump_clock):
    @tool
    async def hang() -> str:
        """Never returns."""
        await trio.sleep_forever()

    llm = ScriptedLLM({"n": [Reply("", [call("hang")]), Reply("", [call("set_output", key="x", value="1")])]})
    config = ExecutorConfig(tool_timeout=5)
    g = graph([llm_node("n", outputs=("x",), tools=("hang",))])
    result = await ex_with(llm, tools=[hang], config=config).execute(g, GOAL, {})
    assert result.success
    tool_msg = [m for m in llm.requests[1].messages if m["role"] == "tool"][0]
    assert "timed out after 5" in tool_msg["content"]


async def test_tool_executor_answers_any_tool():
    seen = []

    def answer(name, args):
        seen.append((name, args))
        return {"ok": name}

    llm = ScriptedLLM({"n": [Reply("", [call("web_search", query="q")]), Reply("", [call("set_output", key="x", value="1")])]})
    g = graph([llm_node("n", outputs=("x",), tools=("web_search",))])
    result = await ex_with(llm, tool_executor=answer).execute(g, GOAL, {})
    assert result.success and seen == [("web_search", {"query": "q"})]


async def test_text_streams_as_deltas_internal_vs_client_facing():
    sink = ListSink()
    llm = ScriptedLLM({"a": [Reply("hello world, streamed", [call("set_output", key="x", value="1")])],
                       "b": [Reply("for the user", [call("set_output", key="y", value="2")])]},
                      chunk_size=5)
    g = graph([llm_node("a", outputs=("x",)), llm_node("b", outputs=("y",), client_facing=True)], chain("a", "b"))
    await ex_with(llm, events=sink).execute(g, GOAL, {})
    internal = [e for e in sink.events if e.type == EventType.LLM_TEXT_DELTA]
    client = [e for e in sink.events if e.type == EventType.CLIENT_OUTPUT_DELTA]
    assert len(internal) == 5 and internal[-1].data["snapshot"] == "hello world, streamed"
    assert {e.node_id for e in client} == {"b"} and client[-1].data["snapshot"] == "for the user"
    assert EventType.LLM_TURN_COMPLETED in sink.types()
    assert [e.data["key"] for e in sink.events if e.type == EventType.OUTPUT_KEY_SET] == ["x", "y"]


async def test_stream_reset_discards_partial_text_and_signals_clients():
    sink = ListSink()
    llm = ScriptedLLM({"n": [Reply("abcdefghij", [call("set_output", key="x", value="1")], reset_after=1)]},
                      chunk_size=3)
    result = await ex_with(llm, events=sink).execute(graph([llm_node("n", outputs=("x",))]), GOAL, {})
    deltas = [e.data for e in sink.events if e.type == EventType.LLM_TEXT_DELTA]
    assert deltas[0]["snapshot"] == "abc"
    assert deltas[1].get("reset") is True and deltas[1]["snapshot"] == ""
    assert deltas[-1]["snapshot"] == "abcdefghij"
    conv = result.session_state["conversations"]["_shared"]
    assert [m["content"] for m in conv if m["role"] == "assistant"] == ["abcdefghij"]


async def test_continuous_conversation_carries_over_with_transition():
    llm = ScriptedLLM(autopilot=True)
    g = graph([llm_node("a", outputs=("x",)), llm_node("b", inputs=("x",), outputs=("y",))], chain("a", "b"))
    result = await ex_with(llm).execute(g, GOAL, {})
    assert result.success
    b_req = llm.calls_for("b")[0]
    assert b_req.messages[0]["content"].startswith("--- PHASE: a")
    assert "PHASE TRANSITION: a → b" in b_req.messages[-1]["content"]
    assert "_shared" in result.session_state["conversations"]


async def test_isolated_conversation_starts_fresh_per_node():
    llm = ScriptedLLM(autopilot=True)
    g = graph([llm_node("a", outputs=("x",)), llm_node("b", inputs=("x",), outputs=("y",))], chain("a", "b"),
              conversation_mode="isolated")
    await ex_with(llm).execute(g, GOAL, {})
    b_req = llm.calls_for("b")[0]
    assert len(b_req.messages) == 1 and b_req.messages[0]["content"].startswith("--- PHASE: b")
    assert "- x: autopilot x" in b_req.messages[0]["content"]


async def test_llm_error_fails_the_attempt_and_retry_starts_clean():
    llm = ScriptedLLM({"n": [Reply(error="provider down"), Reply("", [call("set_output", key="x", value="1")])]})
    g = graph([llm_node("n", outputs=("x",), max_retries=1)])
    result = await ex_with(llm).execute(g, GOAL, {})
    assert result.success and result.total_retries == 1
    assert len(llm.requests[1].messages) == 1  # retry does not see the failed attempt


async def test_llm_decide_edge_asks_the_model_once():
    from executor_support import edge

    llm = ScriptedLLM({"a": [Reply("", [call("set_output", key="x", value="1")])],
                       "a->b": ['{"proceed": false}'], "a->c": ['{"proceed": true}']}, autopilot=True)
    g = graph([llm_node("a", outputs=("x",)), llm_node("b"), llm_node("c")],
              [edge("a", "b", "llm_decide", priority=1), edge("a", "c", "llm_decide")])
    result = await ex_with(llm).execute(g, GOAL, {})
    assert result.path == ("a", "c")
    assert len(llm.calls_for("a->b")) == 1


def test_request_records_are_llm_requests():
    assert LLMRequest(messages=()).node_id == ""
    assert json.dumps({"ok": True})
