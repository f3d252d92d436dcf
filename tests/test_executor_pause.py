"""Pause nodes, client input (inject_input, input timeout) and resuming with session_state."""

from __future__ import annotations

import json

import trio
import trio.testing

from hive_actors.graph.executor import ExecutorConfig, GraphExecutor
from hive_actors.llm.scripted import Reply, ScriptedLLM, call
from hive_actors.events import EventType, ListSink

from executor_support import GOAL, chain, edge, executor, fn, graph, llm_node


async def test_pause_node_pauses_after_completing_and_resume_continues_past_it():
    calls = []

    def rec(name):
        def f():
            calls.append(name)
        return f

    g = graph([fn("a"), fn("review"), fn("c")], chain("a", "review", "c"), pause_nodes=("review",))
    ex = executor({n: rec(n) for n in ("a", "review", "c")})
    first = await ex.execute(g, GOAL, {})
    assert first.status == "paused" and first.paused_at == "review" and first.success
    assert first.path == ("a", "review") and calls == ["a", "review"]
    second = await ex.execute(g, GOAL, {"approved": True},
                              session_state=json.loads(json.dumps(first.session_state)))
    assert second.status == "completed" and calls == ["a", "review", "c"]
    assert second.path == ("a", "review", "c")
    assert second.output["approved"] is True


async def test_resume_input_can_steer_routing_after_pause_node():
    g = graph([fn("review"), fn("yes"), fn("no")],
              [edge("review", "yes", "conditional", "approved == True", priority=1),
               edge("review", "no")], pause_nodes=("review",))
    ex = executor({"review": dict, "yes": dict, "no": dict})
    first = await ex.execute(g, GOAL, {})
    second = await ex.execute(g, GOAL, {"approved": True}, session_state=first.session_state)
    assert second.path[-1] == "yes"


def _intake_graph():
    return graph([llm_node("intake", outputs=("topic",), client_facing=True),
                  llm_node("work", inputs=("topic",), outputs=("answer",))], chain("intake", "work"))


async def test_client_facing_text_turn_pauses_at_once_without_a_client():
    llm = ScriptedLLM({"intake": ["What topic?"]}, autopilot=True)
    sink = ListSink()
    ex = GraphExecutor(llm=llm, events=sink)
    result = await ex.execute(_intake_graph(), GOAL, {})
    assert result.status == "paused" and result.paused_at == "intake"
    assert result.session_state["waiting_input"] == "intake"
    assert EventType.CLIENT_INPUT_REQUESTED in sink.types()
    assert result.path == ()


async def test_resume_delivers_input_value_as_the_users_reply():
    llm = ScriptedLLM({"intake": ["What topic?", Reply("Thanks", [call("set_output", key="topic", value="bees")])]},
                      autopilot=True)
    ex = GraphExecutor(llm=llm)
    first = await ex.execute(_intake_graph(), GOAL, {})
    second = await ex.execute(_intake_graph(), GOAL, {"input": "bees please"},
                              session_state=json.loads(json.dumps(first.session_state)))
    assert second.status == "completed" and second.output["topic"] == "bees"
    reply_request = llm.calls_for("intake")[1]
    assert reply_request.messages[-1] == {"role": "user", "content": "bees please"}
    assert second.path == ("intake", "work")
    assert second.node_visit_counts["intake"] == 1


async def test_resume_without_input_key_sends_whole_dict_as_json():
    llm = ScriptedLLM({"intake": ["What topic?"]}, autopilot=True)
    ex = GraphExecutor(llm=llm)
    first = await ex.execute(_intake_graph(), GOAL, {})
    await ex.execute(_intake_graph(), GOAL, {"topic": "x", "n": 1}, session_state=first.session_state)
    assert json.loads(llm.calls_for("intake")[1].messages[-1]["content"]) == {"topic": "x", "n": 1}


async def test_outputs_set_before_pause_are_kept_on_resume():
    llm = ScriptedLLM({"intake": [Reply("", [call("set_output", key="a", value="1"), call("ask_user", question="b?")]),
                                  Reply("", [call("set_output", key="b", value="2")])]})
    g = graph([llm_node("intake", outputs=("a", "b"), client_facing=True)])
    ex = GraphExecutor(llm=llm)
    first = await ex.execute(g, GOAL, {})
    assert first.paused_at == "intake"
    second = await ex.execute(g, GOAL, {"input": "two"}, session_state=first.session_state)
    assert second.output == {"a": 1, "b": 2}


async def test_inject_input_reaches_a_waiting_node():
    llm = ScriptedLLM({"intake": ["What topic?", Reply("", [call("set_output", key="topic", value="t")])]},
                      autopilot=True)
    sink = ListSink()
    ex = GraphExecutor(llm=llm, events=sink, config=ExecutorConfig(input_timeout=None))
    out = {}

    async def run():
        out["r"] = await ex.execute(_intake_graph(), GOAL, {})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await trio.testing.wait_all_tasks_blocked()
        assert ex.current_node_id == "intake"
        assert await ex.inject_input("nobody", "hi") is False
        assert await ex.inject_input("intake", "robots") is True
    assert out["r"].status == "completed"
    received = [e for e in sink.events if e.type == EventType.CLIENT_INPUT_RECEIVED]
    assert received[0].data["content"] == "robots"


async def test_input_timeout_pauses_when_no_input_arrives(autojump_clock):
    llm = ScriptedLLM({"intake": ["What topic?"]})
    asked = []

    def timeout():
        asked.append(1)
        return 30.0

    ex = GraphExecutor(llm=llm, config=ExecutorConfig(input_timeout=timeout))
    start = trio.current_time()
    result = await ex.execute(_intake_graph(), GOAL, {})
    assert result.paused_at == "intake" and trio.current_time() - start == 30.0
    assert asked == [1]


async def test_ask_user_waits_even_when_outputs_are_missing():
    llm = ScriptedLLM({"intake": [Reply("", [call("ask_user", question="Which?")])]})
    sink = ListSink()
    ex = GraphExecutor(llm=llm, events=sink)
    result = await ex.execute(_intake_graph(), GOAL, {})
    assert result.paused_at == "intake"
    req = [e for e in sink.events if e.type == EventType.CLIENT_INPUT_REQUESTED][0]
    assert req.data["prompt"] == "Which?"
    assert "ask_user" in [t["function"]["name"] for t in llm.requests[0].tools]


async def test_input_pause_inside_a_branch_resumes_that_branch_then_the_join():
    llm = ScriptedLLM({"ask": ["Which colour?", Reply("", [call("set_output", key="colour", value="blue")])]})
    g = graph([fn("s"), llm_node("ask", outputs=("colour",), client_facing=True), fn("calc", outputs=("n",)),
               fn("j", ("colour", "n"), ("done",))],
              [edge("s", "ask"), edge("s", "calc"), edge("ask", "j"), edge("calc", "j")])
    funcs = {"s": dict, "calc": lambda: {"n": 2}, "j": lambda colour, n: {"done": f"{colour}{n}"}}
    ex = GraphExecutor(llm=llm, config=ExecutorConfig(functions=funcs))
    first = await ex.execute(g, GOAL, {})
    assert first.status == "paused" and first.paused_at == "ask"
    assert first.session_state["next_nodes"] == ["ask"] and "j" not in first.path
    second = await ex.execute(g, GOAL, {"input": "blue"}, session_state=first.session_state)
    assert second.status == "completed" and second.output["done"] == "blue2"
    assert second.path.count("j") == 1 and second.path.count("calc") == 1
