"""Starting the test MCP server (tests/mcp_servers/fake_tools.py) over stdio or HTTP."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from hive_actors.llm.scripted import Reply, ScriptedLLM, call
from hive_actors.tools.mcp_config import MCPServerConfig

SERVER = Path(__file__).parent / "mcp_servers" / "fake_tools.py"


def stdio_config(name: str = "fake", *extra: str, optional: bool = False) -> MCPServerConfig:
    return MCPServerConfig(name=name, transport="stdio", command=sys.executable,
                           args=(str(SERVER), "stdio", *extra), optional=optional)


@contextlib.asynccontextmanager
async def http_server(transport: str = "http", *extra: str) -> AsyncIterator[tuple[str, trio.Process]]:
    """A fake_tools server on 127.0.0.1 (a free port); yields its URL and process; kills it
    on exit."""
    async with trio.open_nursery() as nursery:
        proc: trio.Process = await nursery.start(_spawn, [sys.executable, str(SERVER), transport, *extra])
        try:
            assert proc.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(1)
                assert chunk, "the test server exited before printing its URL"
                line += chunk
            url = line.decode().split(" ", 1)[1].strip()
            yield url, proc
        finally:
            nursery.cancel_scope.cancel()


async def _spawn(cmd: list[str], *, task_status: trio.TaskStatus[trio.Process]) -> None:
    await trio.run_process(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           check=False, task_status=task_status)


def http_config(url: str, name: str = "fake", transport: str = "http") -> MCPServerConfig:
    return MCPServerConfig(name=name, transport=transport, url=url)


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def fake_argument(name: str, schema: dict) -> object:
    """A plausible value for one argument of a tool schema (deterministic)."""
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    known = {"filename": "notes.md", "url": "https://example.com/page", "query": "trio actors",
             "data": "fake data line\n"}
    return known.get(name, f"fake {name}")


class ToolPilot(ScriptedLLM):
    """Autopilot that first calls every real tool a node offers, once per node visit, with
    arguments made from the tool's schema; then sets the outputs as autopilot does."""

    def __init__(self) -> None:
        super().__init__(autopilot=True)

    def _next(self, request):
        real = [t["function"] for t in request.tools
                if t["function"]["name"] not in ("set_output", "ask_user")]
        if real and not _called_in_visit(request):
            calls = []
            for fn in real:
                props = fn.get("parameters", {}).get("properties", {})
                required = fn.get("parameters", {}).get("required", list(props))
                calls.append(call(fn["name"], **{k: fake_argument(k, props.get(k, {}))
                                                 for k in required if k in props}))
            return Reply("", calls)
        return super()._next(request)


def _called_in_visit(request) -> bool:
    """True once this node visit's conversation holds a tool result of a real tool."""
    from hive_actors.graph.nodes.conversation import phase_start

    messages = list(request.messages)
    start = phase_start(messages, request.node_id) or 0
    return any(m.get("role") == "tool" for m in messages[start:])
