"""Hive's tools.py contract (TOOLS + tool_executor(tool_use), framework.* imports) runs
unchanged, and the seed's ``framework.*`` import lines work without Hive installed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from hive_actors.llm.scripted import Reply, ScriptedLLM, call
from hive_actors.runner import AgentRunner

AGENT_JSON = {
    "agent": {"id": "weather", "name": "weather"},
    "graph": {
        "id": "weather-graph", "goal_id": "g", "entry_node": "ask", "terminal_nodes": ["ask"],
        "nodes": [{"id": "ask", "name": "Ask", "node_type": "event_loop",
                   "output_keys": ["answer"], "tools": ["get_weather", "save_note"]}],
        "edges": [],
    },
    "goal": {"id": "g", "name": "Weather", "description": "Report the weather"},
}

# Written as Hive's templates write tools.py (imports Hive's own framework package).
TOOLS_PY = '''
import json
from framework.llm.provider import Tool, ToolUse, ToolResult

TOOLS = {
    "get_weather": Tool(
        name="get_weather",
        description="Current weather of a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"]},
    ),
    "save_note": Tool(
        name="save_note",
        description="Save a note in the session's data folder",
        parameters={"type": "object",
                    "properties": {"text": {"type": "string"}, "data_dir": {"type": "string"}},
                    "required": ["text", "data_dir"]},
    ),
}


def tool_executor(tool_use: ToolUse) -> ToolResult:
    if tool_use.name == "get_weather":
        city = tool_use.input.get("city", "")
        if not city:
            return ToolResult(tool_use_id=tool_use.id, content=json.dumps({"error": "no city"}),
                              is_error=True)
        return ToolResult(tool_use_id=tool_use.id,
                          content=json.dumps({"city": city, "temperature_c": 21}))
    if tool_use.name == "save_note":
        import pathlib
        path = pathlib.Path(tool_use.input["data_dir"]) / "note.txt"
        path.write_text(tool_use.input["text"])
        return ToolResult(tool_use_id=tool_use.id, content=str(path))
    return ToolResult(tool_use_id=tool_use.id, content="unknown tool", is_error=True)
'''


def hive_agent(tmp_path):
    folder = tmp_path / "weather"
    folder.mkdir()
    (folder / "agent.json").write_text(json.dumps(AGENT_JSON))
    (folder / "tools.py").write_text(TOOLS_PY)
    return folder


async def test_hive_template_tools_py_runs_unchanged(tmp_path):
    llm = ScriptedLLM({"ask": [
        Reply("", [call("get_weather", city="Oslo"), call("get_weather"),
                   call("save_note", text="sunny")]),
        Reply("", [call("set_output", key="answer", value="21C")]),
    ]})
    runner = AgentRunner.load(hive_agent(tmp_path), llm=llm, storage_path=tmp_path / "store")
    async with runner:
        result = await runner.run({})
    assert result.success, result.error
    ok, missing, saved = [m["content"] for m in llm.requests[1].messages if m["role"] == "tool"]
    assert json.loads(ok) == {"city": "Oslo", "temperature_c": 21}
    # arguments are checked against the tool's schema first: the executor never sees this call
    assert missing == "ERROR: invalid arguments for tool 'get_weather': city: Field required"
    tool_log = [json.loads(line) for line in
                (next((tmp_path / "store" / "sessions").iterdir()) / "logs" / "tool_logs.jsonl")
                .read_text().splitlines()]
    assert [e["is_error"] for e in tool_log if e["tool_name"] == "get_weather"] == [False, True]
    # data_dir is a context parameter: hidden from the model, the session's data/ folder
    schema = next(t["function"]["parameters"] for t in llm.requests[0].tools
                  if t["function"]["name"] == "save_note")
    assert set(schema["properties"]) == {"text"}
    session_dir = next((tmp_path / "store" / "sessions").iterdir())
    assert saved == str(session_dir / "data" / "note.txt")
    assert (session_dir / "data" / "note.txt").read_text() == "sunny"
    (note_line,) = [e for e in tool_log if e["tool_name"] == "save_note"]
    assert note_line["arguments"] == {"text": "sunny", "data_dir": str(session_dir / "data")}


def run_python(code, tmp_path, extra_path=None):
    env_path = [str(extra_path)] if extra_path else []
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(env_path)},
        timeout=60)


def test_seed_framework_imports_work_without_hive(tmp_path):
    done = run_python("""
        from framework.runner import AgentRunner
        from framework.runtime.agent_runtime import AgentRuntime, create_agent_runtime
        from framework.runtime.execution_stream import EntryPointSpec
        from framework.llm.provider import Tool, ToolUse, ToolResult
        import hive_actors
        assert AgentRunner is hive_actors.AgentRunner and EntryPointSpec is hive_actors.EntryPointSpec
        print("ok")
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_an_installed_hive_framework_is_never_shadowed(tmp_path):
    real = tmp_path / "site" / "framework"
    (real / "llm").mkdir(parents=True)
    (real / "__init__.py").write_text("REAL = True\n")
    (real / "llm" / "__init__.py").write_text("")
    (real / "llm" / "provider.py").write_text("class Tool: real = True\n")
    done = run_python("""
        import hive_actors
        import framework
        from framework.llm.provider import Tool
        assert framework.REAL and Tool.real
        try:
            import framework.runner
        except ImportError:
            print("ok")
    """, tmp_path, extra_path=tmp_path / "site")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


async def test_seed_create_agent_runtime_takes_a_hive_tool_executor(tmp_path):
    from framework.llm.provider import ToolResult, ToolUse
    from framework.runtime.agent_runtime import create_agent_runtime
    from hive_actors.graph.loader import load_agent

    seen: list[ToolUse] = []

    def tool_executor(tool_use):
        seen.append(tool_use)
        return ToolResult(tool_use_id=tool_use.id, content=json.dumps({"sum": 3}))

    folder = tmp_path / "plain"  # agent.json only: the tools come from the executor
    folder.mkdir()
    (folder / "agent.json").write_text(json.dumps(AGENT_JSON))
    definition = load_agent(folder)
    llm = ScriptedLLM({"ask": [Reply("", [call("get_weather", city="Rome")]),
                               Reply("", [call("set_output", key="answer", value="ok")])]})
    runtime = create_agent_runtime(graph=definition.graph, goal=definition.goal,
                                   storage_path=tmp_path / "store", llm=llm,
                                   tool_executor=tool_executor)
    async with runtime:
        result = await runtime.trigger_and_wait("default", {})
    assert result.success, result.error
    assert [(u.name, u.input) for u in seen] == [("get_weather", {"city": "Rome"})]
    assert [m["content"] for m in llm.requests[1].messages if m["role"] == "tool"] == ['{"sum": 3}']


def test_a_framework_alias_leaves_the_real_module_as_it_was():
    """`framework.runner` is hive_actors.runner itself, whose own spec is not rewritten
    (a rewritten spec would make importlib.reload a silent no-op)."""
    import importlib

    import hive_actors.runner as real

    alias = importlib.import_module("framework.runner")
    assert alias is real
    assert real.__spec__.name == "hive_actors.runner"
