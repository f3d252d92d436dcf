"""GraphExecutor traversal basics: paths, steps, retries, quality, limits, buffer rules."""

from __future__ import annotations

import json

import pytest

from hive_actors.errors import SessionStateError
from hive_actors.graph.executor import GraphExecutor
from hive_actors.graph.result import SessionState
from hive_actors.events import EventType, ListSink

from executor_support import GOAL, Flaky, chain, edge, executor, fn, graph


async def test_single_node_success_reports_path_and_steps():
    ex = executor({"n1": lambda: {"out": 1}})
    result = await ex.execute(graph([fn("n1", outputs=("out",))]), GOAL, {})
    assert result.success and result.status == "completed"
    assert result.path == ("n1",)
    assert result.steps_executed == 1
    assert result.output == {"out": 1}
    assert result.execution_quality == "clean" and result.total_retries == 0


async def test_bare_executor_runs_function_graph_with_sync_and_async_callables():
    async def double(x):
        return {"y": x * 2}

    def add_one(y):
        return {"z": y + 1}

    g = graph([fn("double", ("x",), ("y",)), fn("add_one", ("y",), ("z",))], chain("double", "add_one"))
    result = await executor({"double": double, "add_one": add_one}).execute(g, GOAL, {"x": 5})
    assert result.output == {"x": 5, "y": 10, "z": 11}
    assert result.node_visit_counts == {"double": 1, "add_one": 1}


async def test_function_resolved_by_module_attr_reference():
    g = graph([fn("dumps", ("obj",), ("text",), )])
    g = graph([g.nodes[0].__class__("dumps", node_type="function", function="json:dumps",
                                    input_keys=("obj",), output_keys=("text",))])
    result = await GraphExecutor().execute(g, GOAL, {"obj": 1})
    assert not result.success  # json.dumps returns a str, not a dict of outputs
    assert "must return a dict" in result.error


async def test_failing_node_without_retries_fails_the_execution():
    ex = executor({"n1": Flaky(10)})
    result = await ex.execute(graph([fn("n1")]), GOAL, {})
    assert not result.success and result.status == "failed"
    assert result.execution_quality == "failed"
    assert "node 'n1' failed after 1 attempt" in result.error
    assert "flaky failure 1" in result.error
    assert result.path == ("n1",)


async def test_max_retries_counts_retries_after_the_first_attempt():
    flaky = Flaky(2, {"v": 1})
    g = graph([fn("flaky", outputs=("v",), max_retries=2)])
    result = await executor({"flaky": flaky}).execute(g, GOAL, {})
    assert result.success and flaky.calls == 3
    assert result.execution_quality == "degraded"
    assert result.total_retries == 2
    assert result.path == ("flaky",)  # once per visit, not per retry
    assert result.steps_executed == 1


async def test_retries_exhausted_names_the_attempt_count():
    flaky = Flaky(10)
    g = graph([fn("bad", max_retries=2)])
    result = await executor({"bad": flaky}).execute(g, GOAL, {})
    assert flaky.calls == 3
    assert "failed after 3 attempts" in result.error
    assert result.total_retries == 2


async def test_retry_emits_node_retry_and_failed_events():
    sink = ListSink()
    g = graph([fn("flaky", max_retries=1)])
    await executor({"flaky": Flaky(1)}, events=sink).execute(g, GOAL, {})
    types = sink.types()
    assert types == [EventType.NODE_STARTED, EventType.NODE_FAILED, EventType.NODE_RETRY,
                     EventType.NODE_STARTED, EventType.NODE_COMPLETED]
    retry = sink.events[2]
    assert retry.data["retry_count"] == 1 and retry.data["max_retries"] == 1


async def test_retry_backoff_uses_graph_retry_config(autojump_clock):
    import trio

    from hive_actors.graph.spec import RetryConfig

    times = []

    async def flaky():
        times.append(trio.current_time())
        if len(times) < 3:
            raise RuntimeError("again")
        return {}

    g = graph([fn("f", max_retries=3)], retry=RetryConfig(base_delay_seconds=1.0, factor=2.0))
    result = await GraphExecutor(config=executor().config.__class__(functions={"f": flaky})).execute(g, GOAL, {})
    assert result.success
    assert [round(b - a, 3) for a, b in zip(times, times[1:])] == [1.0, 2.0]


async def test_two_flaky_nodes_sum_their_retries():
    g = graph([fn("a", max_retries=3), fn("b", max_retries=3)], chain("a", "b"))
    result = await executor({"a": Flaky(1), "b": Flaky(2)}).execute(g, GOAL, {})
    assert result.success and result.total_retries == 3
    assert result.execution_quality == "degraded"


async def test_on_failure_edge_routes_to_handler_and_run_succeeds_degraded():
    handled = []
    g = graph([fn("a", max_retries=1), fn("handler"), fn("next")],
              [edge("a", "handler", "on_failure"), edge("a", "next")])
    result = await executor({"a": Flaky(10), "handler": lambda: handled.append(1), "next": dict}).execute(g, GOAL, {})
    assert result.success and result.execution_quality == "degraded"
    assert result.path == ("a", "handler")
    assert result.node_visit_counts["handler"] == 1 and handled == [1]


async def test_success_follows_on_success_not_on_failure():
    g = graph([fn("a"), fn("handler"), fn("next")],
              [edge("a", "handler", "on_failure"), edge("a", "next")])
    result = await executor({"a": dict, "handler": dict, "next": dict}).execute(g, GOAL, {})
    assert result.path == ("a", "next")


async def test_always_edge_does_not_fire_after_a_failure():
    g = graph([fn("a"), fn("b")], [edge("a", "b", "always")])
    result = await executor({"a": Flaky(5), "b": dict}).execute(g, GOAL, {})
    assert not result.success and result.path == ("a",)


async def test_no_matching_edge_ends_successfully():
    g = graph([fn("a", outputs=("score",)), fn("b")], [edge("a", "b", "conditional", "score > 80")])
    result = await executor({"a": lambda: {"score": 30}, "b": dict}).execute(g, GOAL, {})
    assert result.success and result.path == ("a",)


async def test_max_steps_exhaustion_is_a_failure_that_says_so():
    g = graph([fn("a"), fn("b")], [edge("a", "b", "always"), edge("b", "a", "always")], max_steps=5)
    result = await executor({"a": dict, "b": dict}).execute(g, GOAL, {})
    assert not result.success and result.status == "failed"
    assert "max_steps (5)" in result.error
    assert result.path == ("a", "b", "a", "b", "a")
    assert result.steps_executed == 5


async def test_unbounded_cycle_runs_each_node_per_step():
    calls = {"a": 0, "b": 0}

    def count(name):
        def f():
            calls[name] += 1
        return f

    g = graph([fn("a"), fn("b")], [edge("a", "b"), edge("b", "a")], max_steps=6)
    result = await executor({"a": count("a"), "b": count("b")}).execute(g, GOAL, {})
    assert calls == {"a": 3, "b": 3}
    assert result.node_visit_counts == {"a": 3, "b": 3}


async def test_max_node_visits_skips_extra_visits_and_routes_on():
    calls = []
    g = graph(
        [fn("draft", outputs=("n",), max_node_visits=2), fn("review", ("n",), ("approved",)), fn("done")],
        [edge("draft", "review"),
         edge("review", "done", "conditional", "approved", priority=1),
         edge("review", "draft", "conditional", "not approved")],
    )

    def draft():
        calls.append("draft")
        return {"n": len(calls)}

    def review(n):
        calls.append("review")
        return {"approved": calls.count("review") >= 3}

    result = await executor({"draft": draft, "review": review, "done": dict}).execute(g, GOAL, {})
    assert result.success
    assert calls.count("draft") == 2
    assert result.node_visit_counts["draft"] == 3
    assert result.path == ("draft", "review", "draft", "review", "review", "done")


async def test_writing_outside_output_keys_is_a_node_error():
    g = graph([fn("a", outputs=("x",))])
    result = await executor({"a": lambda: {"x": 1, "y": 2}}).execute(g, GOAL, {})
    assert not result.success
    assert "'y'" in result.error and "output_keys" in result.error
    assert "y" not in result.output


async def test_function_missing_required_output_fails():
    g = graph([fn("a", outputs=("x", "maybe"), nullable_output_keys=("maybe",))])
    ok = await executor({"a": lambda: {"x": 1}}).execute(g, GOAL, {})
    assert ok.success
    bad = await executor({"a": lambda: {"maybe": 1}}).execute(g, GOAL, {})
    assert not bad.success and "'x'" in bad.error


async def test_unknown_function_reference_fails_with_its_name():
    result = await GraphExecutor().execute(graph([fn("nowhere_fn")]), GOAL, {})
    assert not result.success and "nowhere_fn" in result.error


async def test_unknown_node_type_fails_before_running():
    from hive_actors.graph.spec import NodeSpec

    g = graph([NodeSpec("x", node_type="tool_call")])
    result = await GraphExecutor().execute(g, GOAL, {})
    assert not result.success and "tool_call" in result.error and result.path == ()


async def test_nodes_needing_missing_tools_fail_before_running():
    from executor_support import llm_node

    g = graph([llm_node("n", tools=("web_search",))])
    result = await GraphExecutor().execute(g, GOAL, {})
    assert not result.success and "web_search" in result.error and result.steps_executed == 0


async def test_malformed_session_state_is_rejected_before_anything_runs():
    calls = []
    ex = executor({"a": lambda: calls.append(1)})
    with pytest.raises(SessionStateError):
        await ex.execute(graph([fn("a")]), GOAL, {}, session_state={"memory": [1, 2]})
    with pytest.raises(SessionStateError):
        await ex.execute(graph([fn("a")]), GOAL, {}, session_state={"version": 99})
    assert calls == []


async def test_session_state_survives_a_json_round_trip_and_validates():
    g = graph([fn("a", outputs=("x",))])
    result = await executor({"a": lambda: {"x": [1, {"k": "v"}]}}).execute(g, GOAL, {"in": 1})
    again = SessionState.from_dict(json.loads(json.dumps(result.session_state)))
    assert again.memory == {"in": 1, "x": [1, {"k": "v"}]}
    assert again.execution_path == ("a",)


async def test_node_events_carry_useful_data():
    sink = ListSink()
    g = graph([fn("a", outputs=("x",)), fn("b")], chain("a", "b"))
    await executor({"a": lambda: {"x": 1}, "b": dict}, events=sink).execute(g, GOAL, {})
    assert sink.types() == [EventType.NODE_STARTED, EventType.NODE_COMPLETED, EventType.EDGE_TRAVERSED,
                            EventType.NODE_STARTED, EventType.NODE_COMPLETED]
    edge_event = sink.events[2]
    assert edge_event.data["source_node"] == "a" and edge_event.data["target_node"] == "b"
    assert edge_event.data["edge_condition"] == "on_success"
    assert sink.events[1].data["output_keys"] == ["x"]


async def test_revisited_node_clears_its_stale_nullable_outputs():
    seen = []

    def a(feedback=None):
        seen.append(feedback)
        return {}

    def b():
        return {"feedback": "again"} if len(seen) == 1 else {}

    g = graph([fn("a", ("feedback",)), fn("b", outputs=("feedback",), nullable_output_keys=("feedback",))],
              [edge("a", "b"), edge("b", "a", "conditional", "feedback is not None")])
    g = graph(list(g.nodes[:1]) + [fn("b", outputs=("feedback",), nullable_output_keys=("feedback",))],
              g.edges)
    result = await executor({"a": a, "b": b}).execute(g, GOAL, {})
    assert result.success and result.path == ("a", "b", "a", "b")
    assert seen == [None, "again"]


async def test_entry_node_argument_starts_elsewhere():
    g = graph([fn("a"), fn("b")], chain("a", "b"), entry_points={"later": "b"})
    result = await executor({"a": dict, "b": dict}).execute(g, GOAL, {}, entry_node="later")
    assert result.path == ("b",)


async def test_scope_receives_writes_and_supplies_missing_inputs():
    class Scope:
        def __init__(self):
            self.data = {"shared_in": 7}

        def get(self, key, default=None):
            return self.data.get(key, default)

        async def write(self, key, value):
            self.data[key] = value

    scope = Scope()
    g = graph([fn("a", ("shared_in",), ("out",))])
    ex = executor({"a": lambda shared_in: {"out": shared_in + 1}}, scope=scope)
    result = await ex.execute(g, GOAL, {})
    assert result.output["out"] == 8 and scope.data["out"] == 8


async def test_function_node_timeout_fails_the_attempt(autojump_clock):
    import trio

    async def slow():
        await trio.sleep(100)

    ex = executor({"slow": slow}, function_node_timeout=5)
    result = await ex.execute(graph([fn("slow")]), GOAL, {})
    assert not result.success and "TooSlowError" in result.error
