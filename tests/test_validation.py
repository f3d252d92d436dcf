"""Malformed agent definitions fail with typed errors that say what is wrong and where."""

from __future__ import annotations

import copy
import json

import pytest

from hive_actors.errors import AgentDefinitionError
from hive_actors.graph.loader import load_agent, validate_agent

VALID = {
    "agent": {"id": "demo", "name": "demo"},
    "graph": {
        "id": "demo-graph",
        "goal_id": "g",
        "entry_node": "a",
        "terminal_nodes": ["b"],
        "nodes": [
            {"id": "a", "name": "A", "description": "first", "output_keys": ["x"]},
            {"id": "b", "name": "B", "description": "second", "input_keys": ["x"]},
        ],
        "edges": [{"id": "a-b", "source": "a", "target": "b", "condition": "on_success"}],
    },
    "goal": {"id": "g", "name": "Goal", "description": "do it"},
}


def write(tmp_path, data=None, *, text=None, raw=None, name="agent.json"):
    path = tmp_path / name
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(text if text is not None else json.dumps(data), encoding="utf-8")
    return path


def variant(change):
    data = copy.deepcopy(VALID)
    change(data)
    return data


def errors_of(path):
    with pytest.raises(AgentDefinitionError) as info:
        load_agent(path)
    problems = info.value.problems
    assert problems and all(p.severity == "error" and p.file == str(path) for p in problems)
    return [(p.path, p.message) for p in problems]


def test_valid_minimal_agent_loads_without_problems(tmp_path):
    agent = load_agent(write(tmp_path, VALID))
    assert agent.warnings == ()
    assert [ep.id for ep in agent.entry_points] == ["default"]
    assert validate_agent(tmp_path / "agent.json") == []


def test_not_json_names_line_and_column(tmp_path):
    path = write(tmp_path, text='{"graph": {"nodes": [}\n')
    [(where, message)] = errors_of(path)
    assert where == "" and message.startswith("not valid JSON:") and "line 1, column 22" in message


def test_empty_file_is_rejected(tmp_path):
    assert errors_of(write(tmp_path, text="  \n")) == [("", "the file is empty")]


def test_utf8_bom_is_accepted_with_a_warning(tmp_path):
    path = write(tmp_path, raw=b"\xef\xbb\xbf" + json.dumps(VALID).encode())
    agent = load_agent(path)
    [warning] = agent.warnings
    assert warning.severity == "warning" and "byte order mark" in warning.message


def test_bom_before_broken_json_reports_both(tmp_path):
    path = write(tmp_path, raw=b"\xef\xbb\xbf{")
    problems = validate_agent(path)
    assert [p.severity for p in problems] == ["warning", "error"]
    assert problems[1].message.startswith("not valid JSON")


def test_not_utf8_is_rejected(tmp_path):
    [(_, message)] = errors_of(write(tmp_path, raw=b'{"a": "\xff"}'))
    assert message == "not UTF-8 text: byte 0xff at offset 7"


def test_top_level_must_be_an_object(tmp_path):
    assert errors_of(write(tmp_path, [1, 2])) == [
        ("", "the top level must be a JSON object, got list")
    ]


def test_wrong_types_are_reported_with_json_paths(tmp_path):
    def change(d):
        d["graph"]["nodes"][0]["tools"] = "web_search"
        d["graph"]["nodes"][1]["max_node_visits"] = "3"
        d["graph"]["edges"][0]["priority"] = True
        d["graph"]["max_steps"] = None
        d["goal"]["success_criteria"] = [{"id": "s", "weight": "high"}]

    found = dict(errors_of(write(tmp_path, variant(change))))
    assert found["graph.nodes[0].tools"] == 'expected a list of strings, got string "web_search"'
    assert found["graph.nodes[1].max_node_visits"] == 'expected an integer, got string "3"'
    assert found["graph.edges[0].priority"] == "expected an integer, got boolean true"
    assert found["goal.success_criteria[0].weight"] == 'expected a number, got string "high"'
    assert "graph.max_steps" not in found  # null means "use the default"


def test_missing_node_id_is_an_error(tmp_path):
    path = write(tmp_path, variant(lambda d: d["graph"]["nodes"][1].pop("id")))
    assert ("graph.nodes[1].id", "missing required key 'id'") in errors_of(path)


def test_missing_edge_endpoint_is_an_error(tmp_path):
    path = write(tmp_path, variant(lambda d: d["graph"]["edges"][0].pop("target")))
    assert errors_of(path) == [("graph.edges[0].target", "missing required key 'target'")]


def test_duplicate_node_ids(tmp_path):
    path = write(tmp_path, variant(lambda d: d["graph"]["nodes"][1].update(id="a")))
    assert ("graph.nodes[1].id", "duplicate node id 'a' (first at graph.nodes[0])") in errors_of(path)


def test_edge_to_unknown_node_suggests_a_close_name(tmp_path):
    path = write(tmp_path, variant(lambda d: d["graph"]["edges"][0].update(target="bb")))
    assert errors_of(path) == [
        ("graph.edges[0].target", "edge 'a-b' target names unknown node 'bb' (did you mean 'b'?)")
    ]


def test_unknown_node_type_names_the_node(tmp_path):
    path = write(tmp_path, variant(lambda d: d["graph"]["nodes"][1].update(node_type="tool_call")))
    [(where, message)] = errors_of(path)
    assert where == "graph.nodes[1].node_type"
    assert message.startswith("node 'b' has unknown node_type 'tool_call'")


def test_bad_condition_expression_names_edge_and_text(tmp_path):
    def change(d):
        d["graph"]["edges"][0].update(condition="conditional", condition_expr="x ==")

    [(where, message)] = errors_of(write(tmp_path, variant(change)))
    assert where == "graph.edges[0].condition_expr"
    assert message.startswith("edge 'a-b': bad condition_expr 'x =='")


def test_unsafe_condition_expression_is_rejected(tmp_path):
    def change(d):
        d["graph"]["edges"][0].update(condition="conditional", condition_expr="x.__class__")

    [(where, _)] = errors_of(write(tmp_path, variant(change)))
    assert where == "graph.edges[0].condition_expr"


def test_conditional_edge_without_expression(tmp_path):
    path = write(tmp_path, variant(lambda d: d["graph"]["edges"][0].update(condition="conditional")))
    assert errors_of(path) == [("graph.edges[0].condition_expr", "conditional edge 'a-b' has no condition_expr")]


def test_unknown_condition_name_is_an_error_not_on_success(tmp_path):
    path = write(tmp_path, variant(lambda d: d["graph"]["edges"][0].update(condition="on_start")))
    [(where, message)] = errors_of(path)
    assert where == "graph.edges[0].condition"
    assert message.startswith("unknown edge condition 'on_start'; expected one of always, on_success")


def test_condition_that_is_neither_name_nor_expression(tmp_path):
    path = write(tmp_path, variant(lambda d: d["graph"]["edges"][0].update(condition="x >>> 1")))
    [(where, message)] = errors_of(path)
    assert where == "graph.edges[0].condition" and "nor a valid expression" in message


def test_unknown_entry_terminal_and_pause_nodes(tmp_path):
    def change(d):
        d["graph"].update(entry_node="zz", terminal_nodes=["b", "yy"], pause_nodes=["xx"],
                          entry_points={"start": "ww"})

    found = dict(errors_of(write(tmp_path, variant(change))))
    assert found["graph.entry_node"] == "entry_node names unknown node 'zz'"
    assert found["graph.terminal_nodes[1]"] == "terminal node names unknown node 'yy'"
    assert found["graph.pause_nodes[0]"] == "pause node names unknown node 'xx'"
    assert found["graph.entry_points.start"] == "entry point 'start' names unknown node 'ww'"


def test_function_node_without_function(tmp_path):
    path = write(tmp_path, variant(lambda d: d["graph"]["nodes"][1].update(node_type="function")))
    [(where, message)] = errors_of(path)
    assert where == "graph.nodes[1].function" and "function node 'b' has no 'function'" in message


def test_unreachable_nodes_and_unknown_tools_are_warnings(tmp_path):
    def change(d):
        d["graph"]["nodes"].append({"id": "c", "name": "C", "description": "", "tools": ["web_search"]})

    agent = load_agent(write(tmp_path, variant(change)))
    found = {(w.path, w.severity): w.message for w in agent.warnings}
    assert found[("graph.nodes[2]", "warning")] == (
        "node 'c' is unreachable from the entry node and entry points")
    assert "web_search" in found[("graph.nodes[2].tools", "warning")]


def test_every_problem_is_reported_at_once(tmp_path):
    def change(d):
        d["graph"]["nodes"][0]["tools"] = 5
        d["graph"]["nodes"][1]["node_type"] = "magic"
        d["graph"]["edges"].append({"id": "b-q", "source": "b", "target": "q"})
        d["graph"]["terminal_nodes"] = ["nope"]

    paths = [where for where, _ in errors_of(write(tmp_path, variant(change)))]
    assert paths == ["graph.nodes[0].tools", "graph.nodes[1].node_type",
                     "graph.edges[1].target", "graph.terminal_nodes[0]"]


def test_folder_without_agent_file(tmp_path):
    with pytest.raises(AgentDefinitionError) as info:
        load_agent(tmp_path)
    assert str(info.value) == f"{tmp_path}: error: folder has neither agent.json nor agent.py"


def test_missing_path(tmp_path):
    assert [p.message for p in validate_agent(tmp_path / "nope.json")] == ["no such file or folder"]


def test_not_an_agent_definition(tmp_path):
    assert errors_of(write(tmp_path, {"hello": 1})) == [
        ("", "no 'graph' object and no top-level 'nodes': not an agent definition")
    ]


def test_conflicting_legacy_and_current_keys(tmp_path):
    path = write(tmp_path, variant(lambda d: d["graph"]["nodes"][0].update(node_id="other")))
    assert ("graph.nodes[0].node_id", "'node_id' 'other' disagrees with 'id' 'a'") in errors_of(path)


def test_bad_async_entry_point(tmp_path):
    def change(d):
        d["graph"]["async_entry_points"] = [{"id": "hook", "entry_node": "b", "trigger_type": "webhook",
                                             "retries": 2}]

    problems = validate_agent(write(tmp_path, variant(change)))
    found = {(p.path, p.severity): p.message for p in problems}
    assert "trigger_type" in found[("graph.async_entry_points[0]", "error")]
    assert found[("graph.async_entry_points[0].retries", "warning")] == (
        "unknown entry point key 'retries' (ignored)")


def test_graph_and_goal_must_be_objects(tmp_path):
    assert errors_of(write(tmp_path, {"graph": [], "goal": {"id": "g"}})) == [
        ("graph", "'graph' must be an object, got list")
    ]
    path = write(tmp_path, variant(lambda d: d.update(goal="be helpful")))
    assert errors_of(path) == [("goal", "'goal' must be an object, got str")]


def test_router_routes_must_name_nodes_and_route_expressions_must_compile(tmp_path):
    def change(d):
        d["graph"]["nodes"][0].update(node_type="router", routes={"yes": "b", "no": "c"},
                                      route_expr="x ==")

    found = dict(errors_of(write(tmp_path, variant(change))))
    assert found["graph.nodes[0].routes.no"] == "route 'no' of node 'a' names unknown node 'c'"
    assert found["graph.nodes[0].route_expr"].startswith("router 'a': bad route_expr 'x =='")
