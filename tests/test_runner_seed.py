"""The seed's AgentRunner / AgentRuntime code blocks, run as written (inside trio)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from hive_actors.errors import ConfigurationError
from hive_actors.graph.checkpoint_config import CheckpointConfig
from hive_actors.llm.scripted import Reply, ScriptedLLM, call
from hive_actors.runner import AgentRunner
from hive_actors.runtime.agent_runtime import AgentRuntime, create_agent_runtime  # noqa: F401
from hive_actors.runtime.event_bus import EventBus
from hive_actors.events import EventType
from hive_actors.runtime.execution_stream import EntryPointSpec

AGENT_PY = '''
from hive_actors.graph import EdgeSpec, Goal, NodeSpec

goal = Goal(id="review", name="Review a task")
nodes = [
    NodeSpec(id="start", node_type="function", function="steps:prepare",
             input_keys=("query",), output_keys=("task",)),
    NodeSpec(id="review-node", client_facing=True, input_keys=("task",),
             output_keys=("decision",)),
    NodeSpec(id="finish", node_type="function", function="steps:finish",
             input_keys=("task", "decision"), output_keys=("report",)),
    # the seed's inject_input example names a node "chat"; here it exists but is not
    # reachable, so nothing is waiting on it when the seed's block injects input
    NodeSpec(id="chat", client_facing=True, output_keys=("reply",)),
]
edges = [EdgeSpec(id="e1", source="start", target="review-node"),
         EdgeSpec(id="e2", source="review-node", target="finish")]
'''

STEPS_PY = '''
def prepare(query):
    return {"task": "do " + str(query)}

def finish(task, decision):
    return {"report": task + ": " + decision}
'''


@pytest.fixture
def agent_dir(tmp_path) -> Path:
    folder = tmp_path / "my_agent"
    folder.mkdir()
    (folder / "agent.py").write_text(textwrap.dedent(AGENT_PY))
    (folder / "steps.py").write_text(textwrap.dedent(STEPS_PY))
    return folder


def review_llm() -> ScriptedLLM:
    return ScriptedLLM({"review-node": [
        Reply("Please review the task."),
        Reply("Thanks.", [call("set_output", key="decision", value="approved")]),
    ]})


async def test_agent_runner_programming_interface(agent_dir, tmp_path):
    storage = tmp_path / "store"
    # Load and run
    runner = AgentRunner.load(agent_dir, llm=review_llm(), storage_path=storage)
    result = await runner.run({"query": "hello"})
    assert result.status == "paused" and result.paused_at == "review-node"
    # Resume from paused session
    saved_state = result.session_state
    result = await runner.run({"input": "approved"}, session_state=saved_state)
    assert result.success and result.output["report"] == "do hello: approved"
    # Lifecycle
    await runner.start()  # Start the runtime
    await runner.stop()  # Stop the runtime
    exec_id = await runner.trigger("default", {})  # Non-blocking trigger
    assert exec_id.startswith("session_")
    entry_points = runner.get_entry_points()  # List entry points
    assert [e.id for e in entry_points] == ["default"]
    await runner.stop()
    # Context manager
    async with AgentRunner.load(agent_dir, llm=review_llm(), storage_path=storage) as runner:
        result = await runner.run({"query": "hello"})
        assert result.paused_at == "review-node"
    # Cleanup
    runner.cleanup()  # Synchronous
    await runner.cleanup_async()  # Asynchronous
    assert not runner.is_running


async def test_session_resume_block(agent_dir, tmp_path):
    runner = AgentRunner.load(agent_dir, llm=review_llm(), storage_path=tmp_path / "s")
    # First run (agent pauses at a client-facing node)
    result = await runner.run({"query": "start task"})
    assert result.paused_at == "review-node"
    assert result.session_state["paused_at"] == "review-node"
    # Resume
    result = await runner.run({"input": "approved"}, session_state=result.session_state)
    assert result.success and result.output["decision"] == "approved"
    state = json.loads((tmp_path / "s" / "sessions" / result.session_id / "state.json").read_text())
    assert state["status"] == "completed"
    await runner.stop()


async def test_agent_runtime_lower_level_block(agent_dir, tmp_path):
    from hive_actors.graph.loader import load_agent

    definition = load_agent(agent_dir)
    graph, goal = definition.graph, definition.goal
    # two executions ask for review (and pause: no client), the resumed one decides
    llm = ScriptedLLM({"review-node": [Reply("Review?"), Reply("Review?"),
                                       Reply("", [call("set_output", key="decision", value="ok")])]})
    tools = definition.tools
    tool_executor = None
    checkpoint_config = CheckpointConfig()
    seen = []

    def my_handler(event):
        seen.append(event)

    # Create runtime with entry points
    runtime = create_agent_runtime(
        graph=graph,
        goal=goal,
        storage_path=tmp_path / "rt",
        entry_points=[
            EntryPointSpec(id="default", name="Default", entry_node="start", trigger_type="manual"),
        ],
        llm=llm,
        tools=tools,
        tool_executor=tool_executor,
        checkpoint_config=checkpoint_config,
    )
    runtime.config = runtime.config.__class__(executor_config=_resolver(definition))
    # Lifecycle
    await runtime.start()
    await runtime.stop()
    await runtime.start()
    # Execution
    exec_id = await runtime.trigger("default", {"query": "hello"})  # Non-blocking
    await runtime.wait_for_result(exec_id)
    result = await runtime.trigger_and_wait("default", {"query": "hello"})  # Blocking
    assert result.paused_at == "review-node"
    state = result.session_state
    result = await runtime.trigger_and_wait("default", {}, session_state=state)  # Resume
    assert result.success
    # Client-facing node I/O
    assert await runtime.inject_input(node_id="chat", content="user response") is False
    # Events
    sub_id = runtime.subscribe_to_events(
        event_types=[EventType.CLIENT_OUTPUT_DELTA],
        handler=my_handler,
    )
    assert runtime.unsubscribe_from_events(sub_id)
    # Inspection
    assert runtime.is_running  # bool
    assert isinstance(runtime.event_bus, EventBus)
    assert runtime.state_manager is not None
    stats = runtime.get_stats()  # Runtime statistics
    assert stats["streams"]["default"]["paused"] >= 2
    await runtime.wait_for_result(exec_id)
    await runtime.stop()


def _resolver(definition):
    from hive_actors.graph.executor_config import ExecutorConfig
    from hive_actors.graph.loader import resolve_function

    return ExecutorConfig(function_resolver=lambda ref: resolve_function(definition, ref))


async def test_runner_without_model_fails_clearly_before_running(agent_dir, tmp_path):
    runner = AgentRunner.load(agent_dir, storage_path=tmp_path / "s")
    with pytest.raises(ConfigurationError, match="no model"):
        await runner.run({"query": "x"})
    assert not (tmp_path / "s" / "sessions").exists()


async def test_runner_default_storage_is_under_home(agent_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    runner = AgentRunner.load(agent_dir, llm="scripted")
    assert runner.storage_path == tmp_path / "home" / ".hive" / "agents" / "my_agent"
