"""MCP tool servers as actors of the runtime: stdio and streamable HTTP servers written with
the SDK's server side (tests/mcp_servers/fake_tools.py), started and stopped by the tests."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
import trio

from hive_actors.errors import MCPServerError
from hive_actors.events import EventType
from hive_actors.llm.scripted import Reply, ScriptedLLM, call
from hive_actors.runtime.agent_runtime import create_agent_runtime
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.storage.session_store import SessionStore

from executor_support import GOAL, graph, llm_node
from mcp_support import http_config, http_server, pid_alive, stdio_config

TOOLS = ("echo", "add", "slow", "die", "fail", "pid", "picture", "whoami", "gather", "grow")


def runtime_for(llm, servers, tmp_path, *, tools=TOOLS, tool_timeout=30.0):
    g = graph([llm_node("n", outputs=("x",), tools=tools)])
    config = RuntimeConfig(executor_config=ExecutorConfig(tool_timeout=tool_timeout))
    return create_agent_runtime(graph=g, goal=GOAL, storage_path=tmp_path, llm=llm,
                                config=config, mcp_servers=servers)


def tool_messages(request):
    return [m["content"] for m in request.messages if m["role"] == "tool"]


def done():
    return Reply("", [call("set_output", key="x", value="done")])


@pytest.fixture(params=["stdio", "http"])
async def server(request):
    """A config for the fake server over each transport (HTTP: started here, on 127.0.0.1)."""
    if request.param == "stdio":
        yield stdio_config()
    else:
        async with http_server() as (url, _proc):
            yield http_config(url)


async def test_tools_are_listed_and_called_through_one_session(server, tmp_path):
    llm = ScriptedLLM({"n": [Reply("", [call("add", a=2, b=3), call("echo", text="hi")]), done()]})
    async with runtime_for(llm, [server], tmp_path) as rt:
        result = await rt.trigger_and_wait("default", {})
    assert result.success, result.error
    assert tool_messages(llm.requests[1]) == ["5", "hi"]
    offered = {t["function"]["name"] for t in llm.requests[0].tools}
    assert set(TOOLS) <= offered


async def test_twenty_executions_share_one_session_concurrently(server, tmp_path):
    script = [Reply("", [call("pid"), call("gather", n=20, key=server.transport)]), done()]

    class PerExecution(ScriptedLLM):
        def _next(self, request):  # each execution plays the same two turns
            turns = sum(1 for m in request.messages if m["role"] == "assistant")
            return script[min(turns, 1)]

    llm = PerExecution()
    async with runtime_for(llm, [server], tmp_path) as rt:
        results = []
        async with trio.open_nursery() as n:
            async def one():
                results.append(await rt.trigger_and_wait("default", {}))
            for _ in range(20):
                n.start_soon(one)
    assert len(results) == 20 and all(r.success for r in results)
    answers = [tool_messages(r) for r in llm.requests if len(tool_messages(r)) == 2]
    assert len(answers) == 20
    assert {gathered for _, gathered in answers} == {"together"}  # all 20 in flight at once
    assert len({pid for pid, _ in answers}) == 1  # on one server process, one session


async def test_cancelled_call_leaves_the_session_usable(server, tmp_path):
    llm = ScriptedLLM({"n": [Reply("", [call("slow", seconds=30)]), Reply("", [call("add", a=1, b=1)]),
                             done()]})
    async with runtime_for(llm, [server], tmp_path, tool_timeout=0.5) as rt:
        result = await rt.trigger_and_wait("default", {})
    assert result.success, result.error
    first, second = tool_messages(llm.requests[2])
    assert first.startswith("ERROR") and "timed out" in first
    assert second == "2"


async def test_server_killed_mid_call_is_a_tool_error_then_restarted(tmp_path):
    server = stdio_config()  # over HTTP the server is not the runtime's child: see the next test
    llm = ScriptedLLM({"n": [Reply("", [call("pid")]), Reply("", [call("die")]),
                             Reply("", [call("pid")]), done()]})
    events = []
    async with runtime_for(llm, [server], tmp_path) as rt:
        rt.subscribe_to_events([EventType.ACTOR_CRASHED], events.append)
        result = await rt.trigger_and_wait("default", {})
    assert result.success, result.error
    first_pid, died, second_pid = tool_messages(llm.requests[3])
    assert died.startswith("ERROR") and "closed the connection" in died
    assert first_pid != second_pid and second_pid.isdigit()
    assert any(e.data["actor"] == "mcp:fake" for e in events)


async def test_http_server_killed_mid_call_is_a_tool_error_and_the_node_carries_on(tmp_path):
    llm = ScriptedLLM({"n": [Reply("", [call("die")]), Reply("", [call("echo", text="x")]), done()]})
    async with http_server() as (url, _proc):
        async with runtime_for(llm, [http_config(url)], tmp_path) as rt:
            result = await rt.trigger_and_wait("default", {})
    assert result.success, result.error
    died, after = tool_messages(llm.requests[2])
    assert died.startswith("ERROR") and "'fake'" in died
    assert after.startswith("ERROR")  # the server is gone: still a tool error, not a crash


async def test_http_server_restarted_by_its_owner_is_reconnected(tmp_path):
    llm = ScriptedLLM({"n": [Reply("", [call("pid")]), Reply("", [call("die")]),
                             Reply("", [call("pid")]), done()]})
    g = graph([llm_node("n", outputs=("x",), tools=TOOLS)])
    config = RuntimeConfig(max_actor_restarts=20)  # reconnects until the server is back
    async with http_server() as (url, _proc):
        port = url.rsplit(":", 1)[1].split("/")[0]
        rt = create_agent_runtime(graph=g, goal=GOAL, storage_path=tmp_path, llm=llm,
                                  config=config, mcp_servers=[http_config(url)])
        async with rt, trio.open_nursery() as nursery:
            result, finished = None, trio.Event()

            async def run():
                nonlocal result
                result = await rt.trigger_and_wait("default", {})
                finished.set()

            since = rt.event_bus.history()[-1][0] + 1
            nursery.start_soon(run)
            await rt.event_bus.wait_for(EventType.ACTOR_CRASHED, since=since, timeout=30)
            async with http_server("http", "--port", port):  # the owner restarts it
                await finished.wait()
    assert result.success, result.error
    first_pid, died, second_pid = tool_messages(llm.requests[3])
    assert died.startswith("ERROR") and first_pid != second_pid and second_pid.isdigit()


async def test_stop_leaves_no_server_process(tmp_path):
    llm = ScriptedLLM({"n": [Reply("", [call("pid")]), done()]})
    rt = runtime_for(llm, [stdio_config()], tmp_path)
    async with rt:
        result = await rt.trigger_and_wait("default", {})
    pid = int(tool_messages(llm.requests[1])[0])
    assert result.success and not pid_alive(pid)


async def test_required_server_that_fails_to_start_fails_the_start(tmp_path):
    rt = runtime_for(ScriptedLLM(autopilot=True), [stdio_config("broken", "--fail-start")], tmp_path)
    with pytest.raises(MCPServerError) as info:
        async with rt:
            pass
    message = str(info.value)
    assert "'broken'" in message and "fake_tools.py" in message
    assert "missing API key FAKE_KEY" in message  # the server's own stderr


async def test_optional_server_that_fails_to_start_warns_and_runs(tmp_path):
    broken = stdio_config("broken", "--fail-start", optional=True)
    llm = ScriptedLLM({"n": [Reply("", [call("echo", text="still here")]), done()]})
    rt = runtime_for(llm, [broken, stdio_config()], tmp_path)
    async with rt:
        warnings = [e for _, e in rt.event_bus.history(event_types=[EventType.TOOL_SERVER_WARNING])]
        result = await rt.trigger_and_wait("default", {})
    assert result.success, result.error
    assert tool_messages(llm.requests[1]) == ["still here"]
    assert warnings and "FAKE_KEY" in warnings[0].data["message"]


async def test_context_parameters_are_hidden_from_the_model_and_injected(server, tmp_path):
    llm = ScriptedLLM({"n": [Reply("", [call("whoami", note="n1")]), done()]})
    async with runtime_for(llm, [server], tmp_path) as rt:
        result = await rt.trigger_and_wait("default", {})
    assert result.success, result.error
    schema = next(t["function"]["parameters"] for t in llm.requests[0].tools
                  if t["function"]["name"] == "whoami")
    assert set(schema["properties"]) == {"note"} and "data_dir" not in schema.get("required", [])
    seen = json.loads(tool_messages(llm.requests[1])[0])
    assert seen["note"] == "n1" and seen["agent_id"] == "test-graph"
    (session,) = SessionStore(tmp_path).list_sessions()
    assert seen["session_id"] == session.session_id == result.session_id
    assert seen["data_dir"] == str(tmp_path / "sessions" / session.session_id / "data")


async def test_mcp_calls_are_in_the_tool_log_with_server_and_sent_arguments(tmp_path):
    llm = ScriptedLLM({"n": [Reply("", [call("whoami", note="x"), call("fail", reason="r")]), done()]})
    async with runtime_for(llm, [stdio_config()], tmp_path) as rt:
        await rt.trigger_and_wait("default", {})
    store = SessionStore(tmp_path)
    sid = store.list_sessions()[0].session_id
    lines = {line["tool_name"]: line for line in store.read_tool_logs(sid)}
    whoami, fail = lines["whoami"], lines["fail"]
    assert whoami["server"] == "fake" and whoami["arguments"]["note"] == "x"
    assert "data_dir" in whoami["arguments"] and "duration_ms" in whoami
    assert fail["is_error"] is True and "failed on purpose" in fail["result"]


async def test_image_results_become_image_parts(tmp_path):
    llm = ScriptedLLM({"n": [Reply("", [call("picture")]), done()]})
    async with runtime_for(llm, [stdio_config()], tmp_path) as rt:
        await rt.trigger_and_wait("default", {})
    (content,) = tool_messages(llm.requests[1])
    assert content[0] == {"type": "text", "text": "a pixel"}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_sse_transport_lists_and_calls(tmp_path):
    llm = ScriptedLLM({"n": [Reply("", [call("add", a=20, b=22)]), done()]})
    async with http_server("sse") as (url, _proc):
        async with runtime_for(llm, [http_config(url, transport="sse")], tmp_path) as rt:
            result = await rt.trigger_and_wait("default", {})
    assert result.success, result.error
    assert tool_messages(llm.requests[1]) == ["42"]


class OneScript(ScriptedLLM):
    """Plays its script once across executions (ScriptedLLM starts it anew per session)."""

    def stream(self, request: Any) -> Any:
        return super().stream(attrs.evolve(request, session_id=""))


async def test_a_changed_tool_list_reaches_later_executions(tmp_path):
    llm = OneScript({"n": [Reply("", [call("grow")]), done(), Reply("", [call("grown")]), done()]})
    rt = runtime_for(llm, [stdio_config()], tmp_path, tools=(*TOOLS, "grown"))
    rt.tool_executor = lambda name, args: f"no tool {name} yet"  # lets the graph start without it
    async with rt:
        since = rt.event_bus.history()[-1][0] + 1
        first = await rt.trigger_and_wait("default", {})
        changed = await rt.event_bus.wait_for(EventType.TOOLS_CHANGED, since=since, timeout=30)
        second = await rt.trigger_and_wait("default", {})
    assert first.success and second.success, (first.error, second.error)
    assert "grown" in changed.data["tools"]
    assert tool_messages(llm.requests[3]) == ["grown up"]  # served by the server now


async def test_a_server_past_its_restart_budget_is_given_up_and_the_runtime_keeps_running(tmp_path):
    llm = ScriptedLLM({"n": [Reply("", [call("die")]), Reply("", [call("echo", text="x")]), done()]})
    g = graph([llm_node("n", outputs=("x",), tools=TOOLS)])
    config = RuntimeConfig(max_actor_restarts=0)
    rt = create_agent_runtime(graph=g, goal=GOAL, storage_path=tmp_path, llm=llm, config=config,
                              mcp_servers=[stdio_config()])
    async with rt:
        result = await rt.trigger_and_wait("default", {})
        warnings = [e for _, e in rt.event_bus.history(event_types=[EventType.TOOL_SERVER_WARNING])]
        assert rt.is_running
    assert result.success, result.error
    died, after = tool_messages(llm.requests[2])
    assert died.startswith("ERROR") and after.startswith("ERROR") and "not running" in after
    assert warnings and "given up" in warnings[0].data["message"]


async def test_tools_py_wins_over_servers_and_the_first_server_wins_a_name(tmp_path, caplog):
    from hive_actors.tools.registry import tool

    @tool
    def echo(text: str) -> str:
        """The agent's own echo."""
        return f"local {text}"

    llm = ScriptedLLM({"n": [Reply("", [call("echo", text="a"), call("pid")]), done()]})
    g = graph([llm_node("n", outputs=("x",), tools=("echo", "pid"))])
    rt = create_agent_runtime(graph=g, goal=GOAL, storage_path=tmp_path, llm=llm, tools=[echo],
                              mcp_servers=[stdio_config("first"), stdio_config("second")])
    async with rt:
        result = await rt.trigger_and_wait("default", {})
    assert result.success, result.error
    assert tool_messages(llm.requests[1])[0] == "local a"
    store = SessionStore(tmp_path)
    sid = store.list_sessions()[0].session_id
    (pid_line,) = [line for line in store.read_tool_logs(sid) if line["tool_name"] == "pid"]
    assert pid_line["server"] == "first"
    shadowed = [r.getMessage() for r in caplog.records if "shadowed" in r.getMessage()]
    assert "tool 'echo' of MCP server 'first' is shadowed by tools.py" in shadowed
    assert "tool 'pid' of MCP server 'second' is shadowed by MCP server 'first'" in shadowed


async def test_a_server_that_dies_while_idle_is_restarted_before_the_next_call(tmp_path):
    import os
    import signal

    import attrs

    llm = ScriptedLLM({"n": [Reply("", [call("pid")]), done(), Reply("", [call("pid")]), done()]})
    fast_ping = attrs.evolve(stdio_config(), ping_interval=0.05)
    async with runtime_for(llm, [fast_ping], tmp_path) as rt:
        first = await rt.trigger_and_wait("default", {})
        (pid,) = tool_messages(llm.requests[1])
        since = rt.event_bus.history()[-1][0] + 1
        os.kill(int(pid), signal.SIGKILL)
        await rt.event_bus.wait_for(EventType.TOOLS_CHANGED, since=since, timeout=30)  # relisted
        second = await rt.trigger_and_wait("default", {})
    assert first.success and second.success, (first.error, second.error)
    (new_pid,) = tool_messages(llm.requests[3])
    assert new_pid.isdigit() and new_pid != pid  # no tool error: the server was back first


async def test_a_loaded_agent_given_to_the_factory_starts_its_folders_servers(tmp_path):
    """create_agent_runtime(load_agent(path)) starts what mcp_servers.json declares, as run does."""
    from hive_actors.graph.loader import load_agent

    folder = tmp_path / "agent"
    folder.mkdir()
    (folder / "agent.json").write_text(json.dumps({
        "agent": {"id": "adder", "name": "adder", "version": "1.0.0"},
        "goal": {"id": "g", "name": "Add"},
        "graph": {"id": "adder", "entry_node": "n", "terminal_nodes": ["n"],
                  "nodes": [{"id": "n", "node_type": "event_loop", "output_keys": ["x"],
                             "tools": ["add"]}],
                  "edges": []},
    }))
    cfg = stdio_config()
    (folder / "mcp_servers.json").write_text(json.dumps(
        {"fake": {"transport": "stdio", "command": cfg.command, "args": list(cfg.args)}}))
    llm = ScriptedLLM({"n": [Reply("", [call("add", a=2, b=3)]), done()]})
    async with create_agent_runtime(load_agent(folder), storage_path=tmp_path / "s", llm=llm) as rt:
        result = await rt.trigger_and_wait("default", {})
    assert result.success, result.error
    assert tool_messages(llm.requests[1]) == ["5"]
