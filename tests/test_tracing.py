"""OpenTelemetry spans and metrics, read back through the SDK's in-memory exporters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from hive_actors.graph.executor import ExecutorConfig, GraphExecutor
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.llm.litellm_provider import LiteLLMProvider
from hive_actors.llm.scripted import Reply as ScriptedReply, ScriptedLLM, call
from hive_actors.runtime.agent_runtime import create_agent_runtime
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.tools.registry import tool
from hive_actors.tracing import Tracing

from executor_support import GOAL, edge, graph, llm_node
from fake_openai import FakeOpenAI, FakeScript, FakeToolCall, FakeUsage, Reply


class Telemetry:
    def __init__(self) -> None:
        self.spans_out = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.metrics_in = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metrics_in])

    def spans(self):
        return list(self.spans_out.get_finished_spans())

    def named(self, prefix):
        return [s for s in self.spans() if s.name.startswith(prefix)]

    def metric_points(self, name):
        data = self.metrics_in.get_metrics_data()
        return [p for rm in data.resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics if m.name == name for p in m.data.data_points]

    def runtime_config(self, **kw):
        return RuntimeConfig(tracing=True, tracer_provider=self.tracer_provider,
                             meter_provider=self.meter_provider, **kw)


@pytest.fixture
def telemetry():
    return Telemetry()


@tool
def lookup(city: str) -> str:
    """Weather of a city."""
    return f"sunny in {city}"


@tool
def broken(city: str) -> str:
    """Always fails."""
    raise RuntimeError(f"no data for {city}")


SCRIPT = FakeScript({"n": [
    Reply(tool_calls=(FakeToolCall("lookup", json.dumps({"city": "Oslo"})),
                      FakeToolCall("broken", json.dumps({"city": "Oslo"}))),
          usage=FakeUsage(prompt_tokens=120, completion_tokens=30)),
    Reply(text="Done.", tool_calls=(FakeToolCall("set_output", json.dumps({"key": "x", "value": "1"})),),
          usage=FakeUsage(prompt_tokens=200, completion_tokens=7)),
]})


def one_node_graph():
    return graph([llm_node("n", outputs=("x",), tools=("lookup", "broken"),
                           system_prompt="[[fake:n]] Look it up.")])


async def test_a_run_through_the_fake_server_gives_the_span_tree_and_metrics(nursery, telemetry):
    server = FakeOpenAI(SCRIPT)
    await nursery.start(server.run)
    llm = LiteLLMProvider("openai/gpt-4o-mini", api_base=server.base_url, api_key="sk-test")
    runtime = create_agent_runtime(one_node_graph(), GOAL, llm=llm, tools=[lookup, broken],
                                   config=telemetry.runtime_config(), agent_name="weather")
    tracer = telemetry.tracer_provider.get_tracer("test")
    async with runtime:
        with tracer.start_as_current_span("caller") as caller:
            with trio.fail_after(30):
                result = await runtime.trigger_and_wait("default", {})
    assert result.status == "completed", result.error

    (execution,) = telemetry.named("invoke_agent")
    (node,) = telemetry.named("node ")
    chats = telemetry.named("chat ")
    tools = {s.name: s for s in telemetry.named("execute_tool")}
    assert execution.name == "invoke_agent weather"
    assert execution.parent.span_id == caller.get_span_context().span_id  # the caller's context
    assert execution.context.trace_id == caller.get_span_context().trace_id
    assert execution.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert execution.attributes["gen_ai.conversation.id"] == result.session_id
    assert node.name == "node n" and node.parent.span_id == execution.context.span_id
    assert [c.name for c in chats] == ["chat openai/gpt-4o-mini"] * 2
    assert set(tools) == {"execute_tool lookup", "execute_tool broken"}
    for child in [*chats, *tools.values()]:
        assert child.parent.span_id == node.context.span_id

    first, second = chats
    assert first.attributes["gen_ai.request.model"] == "openai/gpt-4o-mini"
    assert first.attributes["gen_ai.provider.name"] == "openai"
    assert (first.attributes["gen_ai.usage.input_tokens"], first.attributes["gen_ai.usage.output_tokens"]) == (120, 30)
    assert (second.attributes["gen_ai.usage.input_tokens"], second.attributes["gen_ai.usage.output_tokens"]) == (200, 7)
    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert "gen_ai.input.messages" not in first.attributes  # no content unless asked

    ok, failed = tools["execute_tool lookup"], tools["execute_tool broken"]
    assert ok.status.status_code is StatusCode.UNSET
    assert ok.attributes["gen_ai.tool.name"] == "lookup" and ok.attributes["gen_ai.tool.call.id"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "RuntimeError"
    assert failed.events[0].name == "exception" and "no data for Oslo" in failed.status.description
    assert "gen_ai.tool.call.arguments" not in ok.attributes

    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in telemetry.metric_points("gen_ai.client.token.usage")}
    assert tokens == {"input": 320, "output": 37}
    (duration,) = telemetry.metric_points("gen_ai.client.operation.duration")
    assert duration.count == 2 and duration.attributes["gen_ai.request.model"] == "openai/gpt-4o-mini"


async def test_content_is_recorded_only_when_asked(telemetry):
    llm = ScriptedLLM({"n": [ScriptedReply("Hi.", [call("lookup", city="Rome")]),
                             ScriptedReply("", [call("set_output", key="x", value="1")])]})
    tracing = Tracing(tracer_provider=telemetry.tracer_provider,
                      meter_provider=telemetry.meter_provider, capture_content=True)
    executor = GraphExecutor(llm=llm, tools=[lookup, broken], config=ExecutorConfig(tracing=tracing))
    result = await executor.execute(one_node_graph(), GOAL, {"q": "weather"})
    assert result.success
    chat = telemetry.named("chat ")[0]
    assert "Look it up." in chat.attributes["gen_ai.system_instructions"]
    assert json.loads(chat.attributes["gen_ai.input.messages"])[0]["role"] == "user"
    assert json.loads(chat.attributes["gen_ai.output.messages"])[0]["content"] == "Hi."
    (tool_span,) = telemetry.named("execute_tool")
    assert json.loads(tool_span.attributes["gen_ai.tool.call.arguments"]) == {"city": "Rome"}
    assert tool_span.attributes["gen_ai.tool.call.result"] == "sunny in Rome"


async def test_fan_out_branches_and_their_tool_calls_nest_under_their_own_nodes(telemetry):
    llm = ScriptedLLM({
        "a": [ScriptedReply("", [call("lookup", city="A")]), ScriptedReply("", [call("set_output", key="a", value="1")])],
        "b": [ScriptedReply("", [call("lookup", city="B")]), ScriptedReply("", [call("set_output", key="b", value="1")])],
    }, autopilot=True)
    g = graph([llm_node("src", outputs=("s",)), llm_node("a", outputs=("a",), tools=("lookup",)),
               llm_node("b", outputs=("b",), tools=("lookup",)), llm_node("join", outputs=("j",))],
              [edge("src", "a"), edge("src", "b"), edge("a", "join"), edge("b", "join")])
    tracing = Tracing(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    executor = GraphExecutor(llm=llm, tools=[lookup], config=ExecutorConfig(tracing=tracing))
    result = await executor.execute(g, GOAL, {})
    assert result.success, result.error
    (execution,) = telemetry.named("invoke_agent")
    assert execution.name == "invoke_agent test-graph" and execution.parent is None
    nodes = {s.name: s for s in telemetry.named("node ")}
    assert set(nodes) == {"node src", "node a", "node b", "node join"}
    assert all(n.parent.span_id == execution.context.span_id for n in nodes.values())
    for branch in ("a", "b"):
        (tool_span,) = [s for s in telemetry.named("execute_tool")
                        if s.parent.span_id == nodes[f"node {branch}"].context.span_id]
        assert tool_span.name == "execute_tool lookup"


async def test_a_failed_node_and_execution_are_error_spans(telemetry):
    llm = ScriptedLLM({"n": [ScriptedReply(error="model unavailable")]})
    tracing = Tracing(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    executor = GraphExecutor(llm=llm, config=ExecutorConfig(tracing=tracing, retry_delay_override=0.0))
    result = await executor.execute(graph([llm_node("n", outputs=("x",))]), GOAL, {})
    assert not result.success
    (chat,) = telemetry.named("chat ")
    assert chat.status.status_code is StatusCode.ERROR and chat.attributes["error.type"] == "LLMError"
    (node,) = telemetry.named("node ")
    (execution,) = telemetry.named("invoke_agent")
    assert node.status.status_code is StatusCode.ERROR and "model unavailable" in node.status.description
    assert execution.status.status_code is StatusCode.ERROR
    (duration,) = telemetry.metric_points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "LLMError"


def test_tracing_off_imports_no_opentelemetry():
    code = """
import sys, trio
from hive_actors.graph.executor import GraphExecutor
from hive_actors.graph.spec import GraphSpec, NodeSpec, Goal
from hive_actors.llm.scripted import ScriptedLLM
from hive_actors.runtime.agent_runtime import create_agent_runtime
g = GraphSpec(id="g", entry_node="n", nodes=(NodeSpec("n", name="n", node_type="event_loop", output_keys=("x",)),))
async def main():
    async with create_agent_runtime(g, Goal("g"), llm=ScriptedLLM(autopilot=True)) as rt:
        result = await rt.trigger_and_wait("default", {})
    assert result.status == "completed", result.error
trio.run(main)
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_trace_sets_up_the_sdk_from_the_otel_environment(tmp_path):
    example = Path(__file__).parent.parent / "examples" / "research_assistant"
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none",
           "OTEL_SERVICE_NAME": "my-agents"}
    done = subprocess.run(
        [sys.executable, "-m", "hive_actors.cli", "run", str(example), "--scripted", "--trace",
         "--storage", str(tmp_path)],
        input="trio\n", capture_output=True, text=True, env=env, timeout=120, check=True,
    )
    assert '"name": "invoke_agent Research Assistant"' in done.stdout
    assert '"service.name": "my-agents"' in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "hive_actors.cli", "run", str(example), "--scripted", "--trace"],
        input="", capture_output=True, text=True, env={**env, "OTEL_TRACES_EXPORTER": "zipkin"}, timeout=120,
    )
    # a configuration error, like a missing model: exit code 2 (hive-actors run's usage errors)
    assert bad.returncode == 2 and "OTEL_TRACES_EXPORTER='zipkin'" in bad.stderr


async def test_arguments_refused_by_validation_make_an_error_tool_span(telemetry):
    llm = ScriptedLLM({"n": [ScriptedReply("", [call("lookup", town="Rome")]),
                             ScriptedReply("", [call("set_output", key="x", value="1")])]})
    tracing = Tracing(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    executor = GraphExecutor(llm=llm, tools=[lookup, broken], config=ExecutorConfig(tracing=tracing))
    assert (await executor.execute(one_node_graph(), GOAL, {})).success
    (tool_span,) = telemetry.named("execute_tool")
    assert tool_span.status.status_code is StatusCode.ERROR
    assert tool_span.attributes["error.type"] == "ToolArgumentsError"
    assert "city: Field required" in tool_span.status.description


async def test_mcp_tool_calls_are_execute_tool_spans(telemetry, tmp_path):
    from mcp_support import stdio_config

    llm = ScriptedLLM({"n": [ScriptedReply("", [call("add", a=2, b=3), call("fail", reason="no disk"),
                                                call("whoami", note="x")]),
                             ScriptedReply("", [call("set_output", key="x", value="1")])]})
    g = graph([llm_node("n", outputs=("x",), tools=("add", "fail", "whoami"))])
    runtime = create_agent_runtime(g, GOAL, storage_path=tmp_path, llm=llm,
                                   config=telemetry.runtime_config(), mcp_servers=[stdio_config()])
    async with runtime:
        with trio.fail_after(60):
            result = await runtime.trigger_and_wait("default", {})
    assert result.success, result.error
    (node,) = telemetry.named("node ")
    spans = {s.name: s for s in telemetry.named("execute_tool")}
    assert set(spans) == {"execute_tool add", "execute_tool fail", "execute_tool whoami"}
    assert all(s.parent.span_id == node.context.span_id for s in spans.values())
    assert spans["execute_tool add"].status.status_code is StatusCode.UNSET
    assert spans["execute_tool fail"].status.status_code is StatusCode.ERROR  # the server's isError
    assert spans["execute_tool fail"].attributes["error.type"] == "tool_error"
