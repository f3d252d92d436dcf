"""The research assistant example runs offline with its script and streams to the client."""

from __future__ import annotations

from pathlib import Path

from hive_actors.graph.executor import ExecutorConfig, GraphExecutor
from hive_actors.graph.loader import load_agent, resolve_function
from hive_actors.llm.scripted import ScriptedLLM
from hive_actors.events import EventType, ListSink

EXAMPLE = Path(__file__).parents[1] / "examples" / "research_assistant"


async def test_research_assistant_runs_offline_to_a_report():
    definition = load_agent(EXAMPLE)
    sink = ListSink()
    llm = ScriptedLLM.from_file(EXAMPLE / "script.json", autopilot=True)
    ex = GraphExecutor(llm=llm, tools=definition.tools, events=sink, config=ExecutorConfig(
        function_resolver=lambda ref: resolve_function(definition, ref)))
    first = await ex.execute(definition.graph, definition.goal, {"topic_request": "trio"})
    # intake asks what to research; with no live client the execution pauses there
    assert first.status == "paused" and first.paused_at == "intake", first.error
    result = await ex.execute(definition.graph, definition.goal,
                              {"input": "structured concurrency in trio"},
                              session_state=first.session_state)
    assert result.status == "completed", result.error
    assert result.path == ("intake", "research", "format", "present")
    assert result.output["report"].startswith("# Research brief: structured concurrency in trio")
    assert result.output["needs_more"] is False and len(result.output["findings"]) == 3
    client_text = "".join(e.data["content"] for e in sink.events
                          if e.type == EventType.CLIENT_OUTPUT_DELTA and e.node_id == "present")
    assert "Want me to dig deeper" in client_text
    completed = [e for e in sink.events if e.type == EventType.TOOL_CALL_COMPLETED
                 and e.data["tool_name"] == "lookup_facts"]
    assert "nurseries" in completed[0].data["result"]
