"""The MCP tool servers of one runtime: an `MCPClient` actor per server, supervised.

`start_mcp_servers(nursery, configs, ...)` starts the clients (concurrently) in the runtime's
work nursery (so ``stop()`` closes them with the executions) and returns an `MCPServers`
whose ``registry`` is the runtime's tools plus the servers' (see tools/mcp_tools.py for the
rules). A required server that fails to start raises its `MCPServerError`; an optional one
is skipped with a TOOL_SERVER_WARNING event. A crash after the start is restarted within the
runtime's restart budget (`supervise`); once the budget is spent the server is given up on
(its tools answer errors, a TOOL_SERVER_WARNING says so) and the runtime keeps running.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence

import trio

from hive_actors.errors import MCPServerError
from hive_actors.runtime.supervisor import ActorFailedError, CrashReport, supervise
from hive_actors.tools.mcp_client import MCPClient
from hive_actors.tools.mcp_config import MCPServerConfig
from hive_actors.tools.mcp_tools import mcp_registry
from hive_actors.tools.registry import ToolRegistry

__all__ = ["MCPServers", "start_mcp_servers"]

log = logging.getLogger(__name__)

Warn = Callable[[str, str], None]  # (server name, message)
Listed = Callable[[str, list[str]], None]  # (server name, its tool names)


class MCPServers:
    """The running clients and the registry built from them (rebuilt when a tool list
    changes; ``on_registry`` gets each new one)."""

    def __init__(self, base: ToolRegistry, on_registry: Callable[[ToolRegistry], None],
                 on_listed: Listed) -> None:
        self.base = base
        self.clients: list[MCPClient] = []
        self.registry = base
        self._on_registry = on_registry
        self._on_listed = on_listed
        self._shadowed: set[str] = set()  # logged once each

    def rebuild(self, client: MCPClient | None = None) -> None:
        """A new registry from the clients' current tools; ``client`` has just listed its."""
        self.registry, shadowed = mcp_registry(self.base, self.clients)
        for line in shadowed:
            if line not in self._shadowed:
                self._shadowed.add(line)
                log.warning("%s", line)
        self._on_registry(self.registry)
        if client is not None:
            self._on_listed(client.name, [t.name for t in client.tools])


async def start_mcp_servers(nursery: trio.Nursery, configs: Sequence[MCPServerConfig],
                            base: ToolRegistry, *, on_crash: CrashReport, warn: Warn,
                            max_restarts: int, window: float,
                            on_registry: Callable[[ToolRegistry], None],
                            on_listed: Listed) -> MCPServers:
    """Start a client per server in ``nursery`` (concurrently; their tools are registered in
    config order); raises the first required server's start failure (MCPServerError).
    ``on_listed`` hears each tool listing (start, restart, a change the server announced)
    after the registry has been rebuilt."""
    servers = MCPServers(base, on_registry, on_listed)
    clients = [MCPClient(config, on_tools=servers.rebuild) for config in configs]
    failures: dict[int, MCPServerError] = {}

    async def start(i: int, client: MCPClient) -> None:
        try:
            await nursery.start(functools.partial(
                _supervised, client, on_crash, warn, max_restarts=max_restarts, window=window))
        except MCPServerError as exc:
            failures[i] = exc

    async with trio.open_nursery() as starting:
        for i, client in enumerate(clients):
            starting.start_soon(start, i, client)
    for i, client in enumerate(clients):
        exc = failures.get(i)
        if exc is None:
            servers.clients.append(client)
        elif not client.config.optional:
            raise exc
        else:
            log.warning("optional MCP server %r not started: %s", client.name, exc)
            warn(client.name, f"optional MCP server not started; running without its tools: {exc}")
    servers.rebuild()
    return servers


async def _supervised(client: MCPClient, on_crash: CrashReport, warn: Warn, *,
                      max_restarts: int, window: float,
                      task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    try:
        await supervise(f"mcp:{client.name}", lambda: client.run, on_crash,
                        max_restarts=max_restarts, window=window, task_status=task_status)
    except ActorFailedError as exc:
        client.give_up(str(exc))
        warn(client.name, f"MCP server given up after repeated crashes: {exc}")
