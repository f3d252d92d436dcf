"""CompiledGraph: built once per GraphSpec object, never keeping the graph alive; statuses as
text in JSON."""

from __future__ import annotations

import gc
import json
import weakref

from hive_actors.graph.compiled import compile_graph
from hive_actors.graph.result import ExecutionResult
from hive_actors.graph.spec import NodeSpec
from hive_actors.serde import converter, to_data
from hive_actors.status import ExecutionStatus

from executor_support import GOAL, chain, executor, fn, graph


def test_a_graph_is_compiled_once_and_equal_graphs_apart():
    g = graph([fn("a"), fn("b")], chain("a", "b"))
    twin = graph([fn("a"), fn("b")], chain("a", "b"))
    assert g == twin
    assert compile_graph(g) is compile_graph(g)
    assert compile_graph(twin) is not compile_graph(g)


def test_compiling_does_not_keep_the_graph_alive():
    g = graph([fn("a"), fn("b")], chain("a", "b"))
    compiled = compile_graph(g)
    alive = weakref.ref(g)
    del g
    gc.collect()
    assert alive() is None
    assert compiled.index.nodes["a"].id == "a"  # still usable by whoever holds it


def test_index_matches_the_records_own_lookups():
    g = graph([fn("a"), fn("b"), fn("c")],
              [*chain("a", "b"), *chain("a", "c"), *chain("b", "c")])
    index = compile_graph(g).index
    for node in g.nodes:
        assert index.nodes[node.id] is g.get_node(node.id)
        assert index.outgoing.get(node.id, ()) == g.outgoing(node.id)
        assert index.incoming.get(node.id, ()) == g.incoming(node.id)
    assert g.get_node("nope") is None and g.outgoing("nope") == ()


async def test_an_unknown_node_type_fails_before_anything_runs():
    g = graph([fn("a"), NodeSpec("b", node_type="teleport")], chain("a", "b"))
    calls: list[str] = []
    result = await executor({"a": lambda: calls.append("a") or {}}).execute(g, GOAL, {})
    assert result.status is ExecutionStatus.FAILED and "teleport" in (result.error or "")
    assert calls == []


def test_status_is_text_in_json_and_an_enum_in_python():
    result = ExecutionResult(success=False, status="cancelled")
    assert result.status is ExecutionStatus.CANCELLED
    data = to_data(result)
    assert type(data["status"]) is str and json.loads(json.dumps(data))["status"] == "cancelled"
    assert converter.structure(data, ExecutionResult) == result

