"""Routing: priorities, conditions evaluated once, fan-out with an exact join, branch policy."""

from __future__ import annotations

import trio
import trio.testing

from hive_actors.graph.compiled import compile_graph
from hive_actors.graph.routing import RoutingTable, find_join
from hive_actors.graph.spec import ParallelConfig
from hive_actors.events import EventType, ListSink

from executor_support import GOAL, Flaky, chain, edge, executor, fn, graph


def table(g):
    return RoutingTable(g)


# ---- pure routing ---------------------------------------------------------------------------

def test_highest_priority_level_that_holds_wins():
    g = graph([fn("a"), fn("hi"), fn("lo")],
              [edge("a", "lo", priority=0), edge("a", "hi", "conditional", "x > 1", priority=5)])
    t = table(g)
    assert t.decide("a", True, {}, {"x": 2}).targets == ("hi",)
    assert t.decide("a", True, {}, {"x": 0}).targets == ("lo",)


def test_same_priority_edges_that_hold_fan_out():
    g = graph([fn("a"), fn("b"), fn("c")], [edge("a", "b"), edge("a", "c", "always")])
    assert table(g).decide("a", True, {}, {}).targets == ("b", "c")


def test_failure_only_follows_on_failure_edges():
    g = graph([fn("a"), fn("b"), fn("c"), fn("d")],
              [edge("a", "b", "always", priority=3), edge("a", "c", "on_failure"),
               edge("a", "d", "conditional", "true")])
    t = table(g)
    assert t.decide("a", False, {}, {}).targets == ("c",)
    assert t.decide("a", True, {}, {}).targets == ("b",)


def test_condition_errors_do_not_hold_and_are_reported():
    g = graph([fn("a"), fn("b"), fn("c")],
              [edge("a", "b", "conditional", "missing_name > 1", priority=1), edge("a", "c")])
    decision = table(g).decide("a", True, {}, {})
    assert decision.targets == ("c",)
    assert decision.errors and decision.errors[0][0] == "a->b"


def test_output_and_buffer_names_in_conditions():
    g = graph([fn("a"), fn("b")], [edge("a", "b", "conditional", "output['score'] > 80 and x < y")])
    t = table(g)
    assert t.decide("a", True, {"score": 85}, {"x": 1, "y": 2}).targets == ("b",)
    assert t.decide("a", True, {"score": 85}, {"x": 3, "y": 2}).targets == ()


def test_llm_decide_uses_verdicts_and_defaults_to_success():
    g = graph([fn("a"), fn("b")], [edge("a", "b", "llm_decide")])
    t = table(g)
    assert t.decide("a", True, {}, {}).targets == ("b",)
    assert t.decide("a", True, {}, {}, {"a->b": False}).targets == ()


def test_join_is_first_node_every_branch_reaches():
    g = graph([fn(n) for n in "s a1 a2 b j k".split()],
              [edge("s", "a1"), edge("s", "b"), edge("a1", "a2"), edge("a2", "j"), edge("b", "j"),
               edge("j", "k")])
    assert find_join(g, ("a1", "b")) == "j"
    assert find_join(g, ("a1",)) is None


def test_branches_that_never_meet_have_no_join():
    g = graph([fn(n) for n in "s a b".split()], [edge("s", "a"), edge("s", "b")])
    assert find_join(g, ("a", "b")) is None


# ---- executor behaviour ---------------------------------------------------------------------

async def test_conditions_are_evaluated_once_per_decision(monkeypatch):
    import hive_actors.graph.expressions as expressions

    g = graph([fn("a", outputs=("x",)), fn("b"), fn("c")],
              [edge("a", "b", "conditional", "x > 1", priority=1), edge("a", "c", "conditional", "x <= 1")])
    t = compile_graph(g).routing  # the table every execution of g uses
    calls = []
    expr = t.compiled[id(g.edges[0])]
    original = expr.evaluate

    class Counting:
        def evaluate(self, names):
            calls.append(1)
            return original(names)

    t.compiled[id(g.edges[0])] = Counting()
    result = await executor({"a": lambda: {"x": 5}, "b": dict, "c": dict}).execute(g, GOAL, {})
    assert result.path == ("a", "b")
    assert calls == [1]
    assert expressions  # module in use


async def test_feedback_loop_follows_conditions_until_approved():
    answers = iter([True, False])
    g = graph([fn("director"), fn("writer", outputs=("needs_revision",)), fn("output")],
              [edge("director", "writer"),
               edge("writer", "output", "conditional", "output.get('needs_revision') != True"),
               edge("writer", "director", "conditional", "output.get('needs_revision') == True", priority=-1)])
    result = await executor({"director": dict, "writer": lambda: {"needs_revision": next(answers)},
                             "output": dict}).execute(g, GOAL, {})
    assert result.path == ("director", "writer", "director", "writer", "output")
    assert result.node_visit_counts == {"director": 2, "writer": 2, "output": 1}


async def test_forward_conditional_beats_lower_priority_feedback():
    g = graph([fn("writer", outputs=("ok",)), fn("output"), fn("back")],
              [edge("writer", "output", "conditional", "ok", priority=1),
               edge("writer", "back", "conditional", "ok", priority=-1)])
    result = await executor({"writer": lambda: {"ok": True}, "output": dict, "back": dict}).execute(g, GOAL, {})
    assert result.path == ("writer", "output")


async def test_fan_out_runs_branches_concurrently_and_join_once_after_all():
    started = []
    release = trio.Event()
    merge_calls = []

    def branch(name):
        async def run():
            started.append(name)
            await release.wait()
            return {name: True}
        return run

    async def merge(b1, b2):
        merge_calls.append((b1, b2))
        return {"merged": True}

    g = graph([fn("src"), fn("b1", outputs=("b1",)), fn("b2", outputs=("b2",)),
               fn("merge", ("b1", "b2"), ("merged",))],
              [edge("src", "b1"), edge("src", "b2"), edge("b1", "merge"), edge("b2", "merge")])
    async def src():
        return {}

    ex = executor({"src": src, "b1": branch("b1"), "b2": branch("b2"), "merge": merge})
    out = {}

    async def run():
        out["r"] = await ex.execute(g, GOAL, {})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(started) == ["b1", "b2"]  # both running at once
        assert merge_calls == []
        release.set()
    result = out["r"]
    assert result.success and merge_calls == [(True, True)]
    assert result.path[0] == "src" and result.path[-1] == "merge"
    assert sorted(result.path[1:3]) == ["b1", "b2"]
    assert result.node_visit_counts["merge"] == 1


async def test_join_waits_for_longer_branch_chain():
    order = []

    def rec(name):
        def f():
            order.append(name)
        return f

    g = graph([fn(n) for n in "s a1 a2 a3 b j".split()],
              [edge("s", "a1"), edge("s", "b"), *chain("a1", "a2", "a3", "j"), edge("b", "j")])
    result = await executor({n: rec(n) for n in "s a1 a2 a3 b j".split()}).execute(g, GOAL, {})
    assert result.success and order[-1] == "j" and order.count("j") == 1
    assert set(order[1:-1]) == {"a1", "a2", "a3", "b"}


async def test_fail_all_fails_the_run_when_a_branch_fails():
    g = graph([fn("s"), fn("good"), fn("bad"), fn("j")],
              [edge("s", "good"), edge("s", "bad"), edge("good", "j"), edge("bad", "j")])
    result = await executor({"s": dict, "good": dict, "bad": Flaky(9), "j": dict}).execute(g, GOAL, {})
    assert not result.success and "failed" in result.error and "bad" in result.error
    assert "j" not in result.path


async def test_continue_others_runs_healthy_branch_and_join():
    g = graph([fn("s"), fn("good"), fn("bad"), fn("j")],
              [edge("s", "good"), edge("s", "bad"), edge("good", "j"), edge("bad", "j")],
              parallel=ParallelConfig(on_branch_failure="continue_others"))
    result = await executor({"s": dict, "good": dict, "bad": Flaky(9), "j": dict}).execute(g, GOAL, {})
    assert result.success and result.execution_quality == "degraded"
    assert "good" in result.path and result.path[-1] == "j"


async def test_branch_retries_apply_inside_fan_out():
    bad = Flaky(3)
    g = graph([fn("s"), fn("a"), fn("b", max_retries=5), fn("j")],
              [edge("s", "a"), edge("s", "b"), edge("a", "j"), edge("b", "j")])
    result = await executor({"s": dict, "a": dict, "b": bad, "j": dict}).execute(g, GOAL, {})
    assert result.success and bad.calls == 4


async def test_branch_timeout_fails_slow_branch(autojump_clock):
    async def slow():
        await trio.sleep(10)

    g = graph([fn("s"), fn("fast"), fn("slow"), fn("j")],
              [edge("s", "fast"), edge("s", "slow"), edge("fast", "j"), edge("slow", "j")],
              parallel=ParallelConfig(branch_timeout_seconds=0.1))
    result = await executor({"s": dict, "fast": dict, "slow": slow, "j": dict}).execute(g, GOAL, {})
    assert not result.success


async def test_fan_out_without_join_ends_after_branches():
    g = graph([fn("s"), fn("a"), fn("b")], [edge("s", "a"), edge("s", "b")])
    result = await executor({"s": dict, "a": dict, "b": dict}).execute(g, GOAL, {})
    assert result.success and sorted(result.path) == ["a", "b", "s"]


async def test_edge_traversed_events_for_each_branch():
    sink = ListSink()
    g = graph([fn("s"), fn("a"), fn("b")], [edge("s", "a"), edge("s", "b", "always")])
    await executor({"s": dict, "a": dict, "b": dict}, events=sink).execute(g, GOAL, {})
    traversed = [e.data for e in sink.events if e.type == EventType.EDGE_TRAVERSED]
    assert [(d["target_node"], d["edge_condition"]) for d in traversed] == [("a", "on_success"), ("b", "always")]


async def test_router_node_jumps_by_route_label():
    from hive_actors.graph.spec import NodeSpec

    router = NodeSpec("triage", node_type="router", input_keys=("category",),
                      routes={"billing": "bill", "technical": "tech"})
    g = graph([router, fn("bill"), fn("tech")], ())
    ex = executor({"bill": dict, "tech": dict})
    result = await ex.execute(g, GOAL, {"category": "technical"})
    assert result.path == ("triage", "tech")
    expr_router = NodeSpec("r", node_type="router", routes={"big": "bill", "small": "tech"},
                           extra={"route_expr": "'big' if n > 10 else 'small'"})
    g2 = graph([expr_router, fn("bill"), fn("tech")], ())
    assert (await ex.execute(g2, GOAL, {"n": 50})).path == ("r", "bill")
