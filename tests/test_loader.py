"""Loading agent folders: agent.py code form, tools.py tools, function resolution, writing back."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hive_actors.errors import AgentDefinitionError
from hive_actors.graph import EdgeCondition, EdgeSpec, Goal, GraphSpec, NodeSpec, SuccessCriterion
from hive_actors.graph.loader import (
    AgentDefinition,
    definition_to_json,
    load_agent,
    resolve_function,
    validate_agent,
)
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.tools.registry import ToolRegistry

DOUBLER = Path(__file__).parent / "agents" / "doubler"

AGENT_JSON = {
    "graph": {
        "entry_node": "a",
        "nodes": [
            {"id": "a", "name": "A", "description": "d", "node_type": "function",
             "function": "helpers:inc", "output_keys": ["n"]},
            {"id": "b", "name": "B", "description": "d", "tools": ["shout"]},
        ],
        "edges": [{"id": "ab", "source": "a", "target": "b", "condition": "conditional",
                   "condition_expr": "n > 1"}],
    },
    "goal": {"id": "g"},
}


def make_folder(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name
    folder.mkdir()
    for file, text in files.items():
        (folder / file).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def test_agent_py_defines_goal_nodes_edges_and_graph_settings():
    agent = load_agent(DOUBLER)
    graph = agent.graph
    assert agent.name == "doubler" and agent.source == DOUBLER / "agent.py"
    assert agent.goal.id == graph.goal_id == "double"
    assert [n.id for n in graph.nodes] == ["double", "report"]
    assert graph.entry_node == "double"  # first node
    assert graph.terminal_nodes == ("report",)
    assert (graph.identity_prompt, graph.conversation_mode, graph.max_steps) == (
        "You double numbers.", "isolated", 10)
    assert agent.entry_points == (EntryPointSpec(id="start", entry_node="double", name="start"),)
    assert agent.warnings == ()


def test_tools_py_functions_become_tools_with_schemas_from_hints_and_docstring():
    tools = load_agent(DOUBLER).tools
    assert tools.names() == ["double"]
    spec = tools.get("double")
    assert spec.description == "Twice x."
    assert spec.parameters["properties"]["x"] == {"type": "integer", "description": "the number to double"}


def test_resolve_function_finds_the_agent_folder_module_first():
    agent = load_agent(DOUBLER)
    double = resolve_function(agent, "tools:double")
    assert double(21) == 42
    assert double is agent.tools.get("double").fn


def test_resolve_function_falls_back_to_sys_path():
    assert resolve_function(load_agent(DOUBLER), "json:dumps") is json.dumps


@pytest.mark.parametrize(("ref", "message"), [
    ("tools:", "must look like 'module:attr'"),
    ("no_such_module_xyz:f", "no module 'no_such_module_xyz' in the agent folder"),
    ("tools:triple", "module 'tools' has no attribute 'triple'"),
    ("json:__name__", "is not callable (str)"),
])
def test_resolve_function_errors_say_what_is_missing(ref, message):
    with pytest.raises(AgentDefinitionError, match=re.escape(message)):
        resolve_function(load_agent(DOUBLER), ref)


def test_agent_py_definition_round_trips_through_agent_json(tmp_path):
    first = load_agent(DOUBLER)
    data = definition_to_json(first)
    assert data["graph"]["nodes"][1]["max_retries"] == 2  # written as Hive's total attempts
    folder = tmp_path / "doubler"
    folder.mkdir()
    shutil.copy(DOUBLER / "tools.py", folder / "tools.py")
    (folder / "agent.json").write_text(json.dumps(data), encoding="utf-8")
    second = load_agent(folder)
    assert second == first
    assert second.graph.get_node("report").max_retries == 1
    assert second.tools.names() == ["double"]


def test_agent_json_folder_gets_tools_and_functions_from_its_modules(tmp_path):
    folder = make_folder(tmp_path, "counter", {
        "agent.json": json.dumps(AGENT_JSON),
        "tools.py": """
            from hive_actors.tools.registry import tool

            @tool
            def shout(text: str) -> str:
                return text.upper()
        """,
        "helpers.py": "def inc(n=0):\n    return n + 1\n",
    })
    agent = load_agent(folder)
    assert agent.warnings == ()  # tool provided, function resolvable
    assert agent.graph.edges[0].condition is EdgeCondition.CONDITIONAL
    assert resolve_function(agent, "helpers:inc")(1) == 2
    assert load_agent(folder / "agent.json") == agent


def test_unresolvable_function_and_missing_tools_are_warnings(tmp_path):
    agent = load_agent(make_folder(tmp_path, "bare", {"agent.json": json.dumps(AGENT_JSON)}))
    found = {w.path: w.message for w in agent.warnings}
    assert "no module 'helpers'" in found["graph.nodes[0].function"]
    assert "shout" in found["graph.nodes[1].tools"]


def test_bare_json_file_does_not_pick_up_neighbouring_tools(tmp_path):
    folder = make_folder(tmp_path, "mixed", {
        "other.json": json.dumps(AGENT_JSON),
        "tools.py": "raise RuntimeError('must not be imported')\n",
    })
    agent = load_agent(folder / "other.json")
    assert agent.name == "other" and agent.tools.names() == []


def test_agent_py_imports_sibling_modules_relatively(tmp_path):
    folder = make_folder(tmp_path, "rel", {
        "nodes.py": """
            from hive_actors.graph import NodeSpec
            ONLY = NodeSpec(id="only", name="Only", description="the only node")
        """,
        "agent.py": """
            from hive_actors.graph import Goal
            from hive_actors.graph.spec import EntryPointSpec
            from .nodes import ONLY

            goal = Goal(id="g")
            nodes = [ONLY]
            edges = []
            entry_points = [EntryPointSpec(id="tick", entry_node="only", trigger_type="timer",
                                           trigger_config={"interval_seconds": 60})]
        """,
    })
    agent = load_agent(folder)
    assert agent.graph.entry_node == "only"
    assert [(ep.id, ep.trigger_type) for ep in agent.entry_points] == [("tick", "timer")]
    again = tmp_path / "again" / "rel"
    again.mkdir(parents=True)
    (again / "agent.json").write_text(json.dumps(definition_to_json(agent)), encoding="utf-8")
    assert load_agent(again) == agent


def test_agent_py_missing_parts_are_reported_together(tmp_path):
    folder = make_folder(tmp_path, "broken", {"agent.py": """
        nodes = [{"id": "a"}]
        max_steps = "many"
    """})
    found = {p.path: p.message for p in validate_agent(folder)}
    assert found["goal"] == "agent.py must define 'goal' as a hive_actors Goal, got NoneType"
    assert found["nodes[0]"] == "expected a NodeSpec, got dict"
    assert found["edges"] == "agent.py must define 'edges' as a list of EdgeSpec, got NoneType"
    assert found["max_steps"] == 'expected an integer, got string "many"'


def test_agent_py_syntax_error_names_the_line(tmp_path):
    folder = make_folder(tmp_path, "typo", {"agent.py": "goal = (\n"})
    with pytest.raises(AgentDefinitionError) as info:
        load_agent(folder)
    [problem] = info.value.problems
    assert problem.file == str(folder / "agent.py")
    assert problem.path == "line 1" and problem.message.startswith("syntax error")


def test_agent_py_that_raises_on_import(tmp_path):
    folder = make_folder(tmp_path, "boom", {"agent.py": "raise ValueError('no config')\n"})
    [problem] = validate_agent(folder)
    assert problem.message == "importing failed: ValueError: no config"


def test_agent_py_wins_over_agent_json(tmp_path):
    folder = make_folder(tmp_path, "both", {"agent.json": "not json"})
    shutil.copy(DOUBLER / "agent.py", folder / "agent.py")
    shutil.copy(DOUBLER / "tools.py", folder / "tools.py")
    assert load_agent(folder).source == folder / "agent.py"


def test_agent_py_validation_uses_module_paths(tmp_path):
    folder = make_folder(tmp_path, "refs", {"agent.py": """
        from hive_actors.graph import EdgeSpec, Goal, NodeSpec

        goal = Goal(id="g")
        nodes = [NodeSpec(id="a"), NodeSpec(id="b")]
        edges = [EdgeSpec(id="e", source="a", target="c")]
        pause_nodes = ["z"]
    """})
    errors = {p.path: p.message for p in validate_agent(folder) if p.severity == "error"}
    assert errors == {"edges[0].target": "edge 'e' target names unknown node 'c'",
                      "pause_nodes[0]": "pause node names unknown node 'z'"}


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
extras = st.dictionaries(st.from_regex(r"x_[a-z]{1,6}", fullmatch=True),
                         st.one_of(st.none(), st.integers(), text, st.lists(text, max_size=2)),
                         max_size=2)


@st.composite
def definitions(draw):
    ids = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True), min_size=1,
                        max_size=5, unique=True))
    nodes = tuple(
        NodeSpec(id=i, name=draw(text), description=draw(text),
                 node_type=draw(st.sampled_from(["event_loop", "router"])),
                 input_keys=tuple(draw(st.lists(text, max_size=2))),
                 max_retries=draw(st.integers(0, 5)), client_facing=draw(st.booleans()),
                 system_prompt=draw(st.none() | text), extra=draw(extras))
        for i in ids
    )
    edges = tuple(
        EdgeSpec(id=f"e{n}", source=draw(st.sampled_from(ids)), target=draw(st.sampled_from(ids)),
                 condition=cond, priority=draw(st.integers(-3, 3)), description=draw(text),
                 condition_expr="x > 1" if cond is EdgeCondition.CONDITIONAL else None,
                 extra=draw(extras))
        for n, cond in enumerate(draw(st.lists(st.sampled_from(list(EdgeCondition)), max_size=4)))
    )
    goal = Goal(id="g", name=draw(text), success_criteria=(SuccessCriterion(id="s", weight=0.5, extra=draw(extras)),),
                context=draw(st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), text, max_size=2)))
    graph = GraphSpec(id="gr", entry_node=ids[0], goal_id="g", nodes=nodes, edges=edges,
                      entry_points=draw(st.sampled_from([{}, {"start": ids[0]}])),
                      max_steps=draw(st.integers(1, 500)), identity_prompt=draw(st.none() | text),
                      conversation_mode=draw(st.sampled_from(["continuous", "isolated"])),
                      extra=draw(extras))
    return graph, goal


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definitions())
def test_any_definition_round_trips_through_agent_json(tmp_path, parts):
    graph, goal = parts
    folder = tmp_path / "prop"
    folder.mkdir(exist_ok=True)
    ep_id = "start" if graph.entry_points else "default"
    agent = AgentDefinition(path=folder, name="prop", graph=graph, goal=goal,
                            entry_points=(EntryPointSpec(id=ep_id, entry_node=graph.entry_node,
                                                         name=ep_id),),
                            tools=ToolRegistry(), required_tools=())
    (folder / "agent.json").write_text(json.dumps(definition_to_json(agent)), encoding="utf-8")
    assert load_agent(folder) == agent
