"""MCPClient: the actor holding one MCP session to one tool server.

1. ``run(task_status=)`` opens the transport (stdio: spawns the server, its stderr kept in a
   temp file for messages; ``http``: streamable HTTP; ``sse``), initializes the session and
   lists the tools, then reports started. A failure before that raises `MCPServerError`
   naming the server, its command or URL and its stderr tail.
2. While it runs, `call` sends requests on the one session from any task: calls from many
   executions are multiplexed, concurrently. The SDK's context managers stay in the actor's
   task, as anyio requires.
3. A server saying its tool list changed makes the actor list again and call ``on_tools``.
   An idle session is pinged every ``config.ping_interval`` seconds: a server that died or
   hangs while idle is restarted before a call finds it gone.
4. A call that finds the connection closed fails (an `MCPServerError`: a tool error for the
   model) and wakes the actor, which raises so that its supervisor restarts it; calls made
   meanwhile wait for the new session (bounded by the caller's tool timeout). Reconnecting
   backs off (`RECONNECT_DELAYS`) while it keeps failing, so that an HTTP server that is
   being restarted by its owner gets a few seconds before the restart budget is spent.
5. Cancelling ``run`` (the runtime's ``stop()``) closes the session; a stdio server's process
   has exited when ``run`` returns. A cancelled `call` leaves the session usable.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO

import anyio
import trio
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from hive_actors.errors import MCPServerError
from hive_actors.tools.mcp_config import MCPServerConfig

__all__ = ["MCPClient"]

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
RECONNECT_DELAYS = (0.0, 0.5, 2.0)  # seconds before the 1st, 2nd, later consecutive restarts
_TAIL = 2000  # characters of a server's stderr quoted in errors


class MCPClient:
    """One server's session. Not rerunnable concurrently: one ``run`` at a time."""

    def __init__(self, config: MCPServerConfig, *,
                 on_tools: Callable[[MCPClient], None] | None = None,
                 start_timeout: float = START_TIMEOUT) -> None:
        self.config = config
        self.tools: list[types.Tool] = []
        self._on_tools = on_tools
        self._start_timeout = start_timeout
        self._session: ClientSession | None = None
        self._ready = trio.Event()
        self._wake = trio.Event()
        self._broken = False
        self._stale = False
        self._gone: str | None = None  # set once the server is given up on
        self._errlog: TextIO | None = None
        self._ran = False  # a session was open once: later runs are restarts
        self._failed_restarts = 0

    @property
    def name(self) -> str:
        return self.config.name

    def give_up(self, reason: str) -> None:
        """No more restarts: later and waiting calls fail with ``reason``."""
        self._gone = reason
        self._ready.set()

    # ---- the actor -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve one session until cancelled; raise when the connection breaks."""
        if self._ran:
            delays = RECONNECT_DELAYS
            await trio.sleep(delays[min(self._failed_restarts, len(delays) - 1)])
            self._failed_restarts += 1
        started = False
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
            self._errlog = errlog
            try:
                async with self._open(errlog) as session:
                    self._session, self._broken, self._stale = session, False, False
                    self._ready.set()
                    started = self._ran = True
                    self._failed_restarts = 0
                    task_status.started()
                    await self._serve(session)
            except Exception as exc:
                raise self._error("failed to start" if not started else "stopped answering",
                                  exc) from exc
            finally:
                self._session = None
                if self._ready.is_set() and self._gone is None:
                    self._ready = trio.Event()
                self._errlog = None

    @contextlib.asynccontextmanager
    async def _open(self, errlog: TextIO) -> AsyncIterator[ClientSession]:
        async with contextlib.AsyncExitStack() as stack:
            cfg = self.config
            if cfg.transport == "stdio":
                params = StdioServerParameters(command=cfg.command or "", args=list(cfg.args),
                                               env=dict(cfg.env) or None, cwd=cfg.cwd)
                streams = await stack.enter_async_context(stdio_client(params, errlog=errlog))
            elif cfg.transport == "sse":
                streams = await stack.enter_async_context(
                    sse_client(cfg.url or "", headers=dict(cfg.headers) or None))
            else:
                http = await stack.enter_async_context(
                    create_mcp_http_client(headers=dict(cfg.headers) or None))
                streams = await stack.enter_async_context(
                    streamable_http_client(cfg.url or "", http_client=http))
            session = await stack.enter_async_context(
                ClientSession(streams[0], streams[1], message_handler=self._on_message))
            with trio.fail_after(self._start_timeout):
                await session.initialize()
                await self._list_tools(session)
            yield session

    async def _serve(self, session: ClientSession) -> None:
        interval = self.config.ping_interval
        while True:
            with trio.move_on_after(interval if interval is not None else math.inf):
                await self._wake.wait()
            if not self._wake.is_set():  # idle: is the server still there?
                await self._ping(session)
                continue
            self._wake = trio.Event()
            if self._broken:
                raise MCPServerError("the connection closed")
            if self._stale:
                self._stale = False
                await self._list_tools(session)

    async def _ping(self, session: ClientSession) -> None:
        try:
            with trio.fail_after(self._start_timeout):
                await session.send_ping()
        except trio.TooSlowError:
            raise MCPServerError(f"no answer to a ping within {self._start_timeout:g}s") from None

    async def _list_tools(self, session: ClientSession) -> None:
        tools: list[types.Tool] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools += page.tools
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = tools
        if self._on_tools is not None:
            self._on_tools(self)

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._stale = True
            self._wake.set()

    def _error(self, what: str, exc: BaseException) -> MCPServerError:
        cfg = self.config
        how = f"command: {cfg.target}" if cfg.transport == "stdio" else f"url: {cfg.target}"
        tail = self.stderr_tail()
        return MCPServerError(
            f"MCP server {cfg.name!r} ({cfg.transport}, {how}; declared in {cfg.source}) {what}: "
            f"{_describe(exc)}" + (f"\n--- its stderr (last lines) ---\n{tail}" if tail else ""))

    def stderr_tail(self) -> str:
        f = self._errlog
        if f is None:
            return ""
        try:
            f.flush()
            size = f.seek(0, 2)
            f.seek(max(0, size - _TAIL))
            return f.read().strip()
        except (OSError, ValueError):
            return ""

    # ---- calls (any task) ----------------------------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call ``tool`` on the server. Raises MCPServerError when the server is gone or the
        connection closes during the call (the actor then restarts the session)."""
        while True:
            await self._ready.wait()
            if self._gone is not None:
                raise MCPServerError(f"MCP server {self.name!r} is not running: {self._gone}")
            session = self._session
            if session is not None:
                break
            await trio.lowlevel.checkpoint()  # between sessions: wait for the next one
        try:
            return await session.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code != types.CONNECTION_CLOSED:
                raise MCPServerError(f"MCP server {self.name!r}, tool {tool!r}: {exc}") from exc
            cause: BaseException = exc
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            cause = exc
        if self._session is session:  # the first to notice: later calls wait for a new session
            self._session, self._ready = None, trio.Event()
            self._broken = True
            self._wake.set()
        raise MCPServerError(f"MCP server {self.name!r} closed the connection during a call of "
                             f"{tool!r} ({_describe(cause)}); it is being restarted")


def _describe(exc: BaseException) -> str:
    """The innermost real errors of ``exc`` (SDK errors arrive in nested groups)."""
    if isinstance(exc, BaseExceptionGroup):
        parts = [_describe(e) for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        return "; ".join(parts) or repr(exc)
    if isinstance(exc, trio.TooSlowError):
        return "no answer to initialize within the start timeout"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def list_server_tools(
        configs: list[MCPServerConfig]) -> list[tuple[MCPServerConfig, list[types.Tool] | str]]:
    """Start the servers (concurrently: a slow or failing one costs its own start timeout,
    not the sum), list each one's tools and stop it (``hive-actors info``): per server, in
    ``configs`` order, its tools or the start error's message."""
    found: dict[int, list[types.Tool] | str] = {}

    async def one(i: int, config: MCPServerConfig) -> None:
        client = MCPClient(config)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(client.run)
                found[i] = list(client.tools)
                nursery.cancel_scope.cancel()
        except MCPServerError as exc:
            found[i] = str(exc)

    async with trio.open_nursery() as nursery:
        for i, config in enumerate(configs):
            nursery.start_soon(one, i, config)
    return [(config, found[i]) for i, config in enumerate(configs)]
