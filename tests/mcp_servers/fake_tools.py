"""A test MCP tool server (the SDK's server side) with deterministic fake tools.

    python fake_tools.py [stdio|http|sse] [--tools NAME,NAME...] [--fail-start] [--port N]

stdio serves on stdin/stdout. http/sse bind 127.0.0.1 on a free port (hypercorn, trio worker)
and print ``URL <url>`` on stdout once listening. Tools: ``echo``, ``add``, ``slow`` (sleeps
``seconds``), ``die`` (the process exits mid-call), ``fail`` (an isError result), ``pid``,
``picture`` (an image), ``whoami`` (returns its context parameters), the Hive data tools
(``save_data`` and friends, files under ``data_dir``) and, with ``--tools``, any other names
(each returns a fixed JSON text naming the tool and its arguments).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ImageContent

server = MCPServer("fake-tools")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def slow(seconds: float, tag: str = "") -> str:
    """Sleep, then return the tag."""
    import anyio

    await anyio.sleep(seconds)
    return f"slept {seconds} {tag}"


@server.tool()
def die() -> str:
    """The server process exits at once (a crash mid-call)."""
    os._exit(3)


@server.tool()
def fail(reason: str) -> str:
    """Always an error result."""
    raise ToolError(f"failed on purpose: {reason}")


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def picture() -> list[Any]:
    """A one-pixel PNG and a caption."""
    png = base64.b64encode(bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")).decode()
    return ["a pixel", ImageContent(type="image", data=png, mimeType="image/png")]


@server.tool()
def whoami(data_dir: str, agent_id: str, session_id: str, note: str = "") -> str:
    """Report the context parameters the client injected."""
    return json.dumps({"data_dir": data_dir, "agent_id": agent_id, "session_id": session_id,
                       "note": note})


_arrived: dict[str, int] = {}


@server.tool()
async def gather(n: int, key: str) -> str:
    """Wait until ``n`` calls with this key are in flight together: "together", or
    "alone" if they never were (the client serialised them)."""
    import anyio

    _arrived[key] = _arrived.get(key, 0) + 1
    with anyio.move_on_after(20):
        while _arrived[key] < n:
            await anyio.sleep(0.01)
        return "together"
    return "alone"


@server.tool()
async def grow(ctx: Context) -> str:
    """Add a tool ``grown`` and tell the client the tool list changed."""
    server.add_tool(lambda: "grown up", name="grown", description="Added at run time.")
    await ctx.session.send_tool_list_changed()
    return "grew"


def _file(data_dir: str, filename: str) -> Path:
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / filename).resolve()
    if folder.resolve() not in path.parents:
        raise ToolError(f"{filename!r} is outside data_dir")
    return path


@server.tool()
def save_data(filename: str, data: str, data_dir: str) -> str:
    """Save text to a file of the session's data folder."""
    _file(data_dir, filename).write_text(data)
    return json.dumps({"success": True, "filename": filename, "bytes": len(data)})


@server.tool()
def append_data(filename: str, data: str, data_dir: str) -> str:
    """Append text to a file of the session's data folder."""
    with _file(data_dir, filename).open("a") as f:
        f.write(data)
    return json.dumps({"success": True, "filename": filename})


@server.tool()
def load_data(filename: str, data_dir: str) -> str:
    """Read a file of the session's data folder."""
    path = _file(data_dir, filename)
    if not path.exists():
        return json.dumps({"error": f"no file {filename!r}"})
    return json.dumps({"filename": filename, "content": path.read_text()})


@server.tool()
def list_data_files(data_dir: str) -> str:
    """List the files of the session's data folder."""
    folder = Path(data_dir)
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return json.dumps({"files": names})


@server.tool()
def serve_file_to_user(filename: str, data_dir: str, label: str = "") -> str:
    """Give the user a link to a file of the session's data folder."""
    return json.dumps({"success": True, "file_uri": _file(data_dir, filename).as_uri(),
                       "label": label})


@server.tool()
def web_search(query: str, num_results: int = 3) -> str:
    """Search the web (fake, deterministic)."""
    return json.dumps({"query": query, "results": [
        {"title": f"Result {i} for {query}", "url": f"https://example.com/{i}",
         "snippet": f"About {query}, item {i}."} for i in range(1, num_results + 1)]})


@server.tool()
def web_scrape(url: str) -> str:
    """Fetch a page's text (fake, deterministic)."""
    return json.dumps({"url": url, "title": "Example page", "content": f"The text of {url}."})


def _add_generic(name: str) -> None:
    def generic(note: str = "") -> str:
        return json.dumps({"tool": name, "ok": True, "note": note}, sort_keys=True)

    server.add_tool(generic, name=name, description=f"Fake {name} (deterministic).")


def main(argv: list[str]) -> None:
    transport = argv[0] if argv else "stdio"
    if "--fail-start" in argv:
        print("fake-tools: cannot start: missing API key FAKE_KEY", file=sys.stderr, flush=True)
        sys.exit(2)
    if "--tools" in argv:
        known = {t.name for t in server._tool_manager.list_tools()}
        for name in argv[argv.index("--tools") + 1].split(","):
            if name and name not in known:
                _add_generic(name)
    if transport == "stdio":
        server.run("stdio")
        return
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    app = server.streamable_http_app() if transport == "http" else server.sse_app()
    path = "/mcp" if transport == "http" else "/sse"

    async def run() -> None:
        config = Config()
        port = argv[argv.index("--port") + 1] if "--port" in argv else "0"
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        config.errorlog = None
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve, app, config)
            print(f"URL {binds[0]}{path}", flush=True)

    trio.run(run)


if __name__ == "__main__":
    main(sys.argv[1:])
