"""Every real Hive export in the shared corpus loads, or fails naming file, path and cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hive_actors.errors import AgentDefinitionError
from hive_actors.graph import EdgeCondition
from hive_actors.graph.loader import definition_to_json, load_agent, validate_agent

CORPUS = Path(__file__).parents[1] / ".." / "shared" / "fixtures" / "hive-agents"
FILES = sorted(p.name for p in CORPUS.glob("*.json"))

# The files that cannot load, and the cause each one's errors must name.
REJECTED = {
    "exports-knowledge_agent.json": ("nodes[1].node_type", "unknown node_type 'tool_call'"),
    "memory_example_example.json": ("graph.nodes[0].function", "has no 'function'"),
}


def test_corpus_is_present(hive_fixtures_dir):
    assert len(list(hive_fixtures_dir.glob("*.json"))) == 59


def test_57_of_59_fixtures_load_and_the_rest_fail_for_known_reasons(hive_fixtures_dir):
    loaded, failed = [], {}
    for path in sorted(hive_fixtures_dir.glob("*.json")):
        try:
            load_agent(path)
            loaded.append(path.name)
        except AgentDefinitionError as exc:
            failed[path.name] = exc.problems
    assert len(loaded) == 57
    assert set(failed) == set(REJECTED)
    for name, (path, cause) in REJECTED.items():
        assert any(p.path == path and cause in p.message for p in failed[name]), failed[name]


@pytest.mark.parametrize("name", FILES)
def test_fixture_loads_or_every_error_names_file_path_and_cause(name):
    path = CORPUS / name
    problems = validate_agent(path)
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        assert p.file == str(path)
        assert p.message and "Traceback" not in p.message
    if errors:
        with pytest.raises(AgentDefinitionError) as info:
            load_agent(path)
        assert info.value.problems == errors
        assert all(p.path for p in errors)
    else:
        definition = load_agent(path)
        assert definition.entry_points
        assert definition.graph.get_node(definition.graph.entry_node) is not None
        assert list(definition.warnings) == problems


@pytest.mark.parametrize("name", [f for f in FILES if f not in REJECTED])
def test_fixture_round_trips_through_our_agent_json(name, tmp_path):
    first = load_agent(CORPUS / name)
    data = definition_to_json(first)
    assert set(data) >= {"agent", "graph", "goal", "required_tools", "metadata"}
    copy = tmp_path / name
    copy.write_text(json.dumps(data), encoding="utf-8")
    second = load_agent(copy)
    assert second == first
    assert (second.graph, second.goal, second.entry_points) == (first.graph, first.goal, first.entry_points)


def _load(name):
    return load_agent(CORPUS / name)


def test_router_routes_count_as_reachable_and_human_input_is_client_facing():
    agent = _load("customer-support.json")
    assert agent.graph.get_node("triage").node_type == "router"
    assert agent.graph.get_node("triage").routes["billing"] == "check_billing"
    review = agent.graph.get_node("human_review")
    assert (review.node_type, review.legacy_type, review.client_facing) == ("event_loop", "human_input", True)
    assert not [w for w in agent.warnings if "unreachable" in w.message]


def test_legacy_llm_types_run_as_event_loop_and_keep_their_origin():
    node = _load("async_demo.json").graph.get_node("research_topic_1")
    assert (node.node_type, node.legacy_type) == ("event_loop", "llm_tool_use")


def test_async_entry_points_become_entry_point_specs():
    agent = _load("gmail_inbox_guardian.json")
    eps = {ep.id: ep for ep in agent.entry_points}
    assert eps["start"].entry_node == "intake"
    assert (eps["email-event"].trigger_type, eps["email-event"].isolation_level) == ("event", "shared")
    assert eps["email-event"].trigger_config == {"event_types": ["webhook_received"]}
    assert not [w for w in agent.warnings if "unreachable" in w.message]


def test_flat_file_with_start_end_pseudo_nodes_and_string_criteria():
    agent = _load("exports-market_research_agent.json")
    graph = agent.graph
    assert graph.entry_node == "analyze"
    assert graph.terminal_nodes == ("report",)
    assert [e.id for e in graph.edges] == ["analyze_to_search", "search_to_report"]
    assert agent.goal.id == "market_research"
    assert [(c.id, c.description) for c in agent.goal.success_criteria] == [
        ("sc-1", "Successfully retrieved data and generated a summary")
    ]


def test_raw_expression_conditions_become_conditional_edges_with_a_warning():
    agent = _load("oss_contributor_accelerator.json")
    edge = agent.graph.edges[1]
    assert (edge.source, edge.target) == ("issue-scout", "selection")
    assert edge.condition is EdgeCondition.CONDITIONAL
    assert edge.condition_expr == "ranked_issues != None and issue_analysis != None"
    warned = [w for w in agent.warnings if w.path == "edges[1].condition"]
    assert warned and "ranked_issues != null AND issue_analysis != null" in warned[0].message
    assert agent.graph.entry_node == "intake"  # from the manifest's entry_point
    assert agent.extra["config"]["llm_model"] == "gpt-4o-mini"


def test_old_type_and_prompt_keys_are_read():
    agent = _load("exports-support_ticket_agent.json")
    triage, escalate = agent.graph.get_node("triage"), agent.graph.get_node("escalate")
    assert triage.system_prompt.startswith("You are a support triage assistant")
    assert (triage.node_type, triage.legacy_type, triage.client_facing) == ("event_loop", "llm", False)
    assert (escalate.legacy_type, escalate.client_facing) == ("human", True)
    assert escalate.extra == {"timeout": "1h"}


def test_hive_max_retries_counts_attempts_ours_counts_retries():
    agent = _load("agent_qa_pipeline.json")
    attempts = {n["id"]: n["max_retries"] for n in json.loads(
        (CORPUS / "agent_qa_pipeline.json").read_text())["graph"]["nodes"]}
    for node in agent.graph.nodes:
        assert node.max_retries == attempts[node.id] - 1
    assert _load("tests_dummy_agent.json").graph.nodes[0].max_retries == 2  # Hive default 3


def test_fields_the_reference_drops_are_kept():
    agent = _load("deep_research_agent.json")
    assert agent.graph.conversation_mode == "continuous"
    assert agent.graph.identity_prompt
    assert agent.goal.context or agent.goal.extra  # goal context and other goal keys survive
    auditor = _load("dependency_vulnerability_auditor.json")
    decide = [e for e in auditor.graph.edges if e.condition is EdgeCondition.LLM_DECIDE]
    assert decide and decide[0].description
    assert _load("trip_planner.json").graph.loop_config["max_tool_calls_per_turn"] == 30


def test_conversation_mode_single_reads_as_isolated_with_a_warning():
    agent = _load("data_analysis_agent.json")
    assert agent.graph.conversation_mode == "isolated"
    assert any(w.path == "graph.conversation_mode" for w in agent.warnings)


def test_missing_goal_gets_a_stub_with_a_warning():
    agent = _load("research_summarizer_agent.json")
    assert agent.goal.id == agent.graph.goal_id == "research-summarizer"
    assert any(w.path == "goal" and "stub goal" in w.message for w in agent.warnings)
