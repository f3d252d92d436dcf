"""MCP tool server declarations, read as Hive writes them.

Sources, in the order their servers are registered (the first server to offer a tool name
wins that name):

1. ``mcp_servers.json`` beside ``agent.json``: ``{"name": {...}}`` or ``{"servers": [{"name":
   ..., ...}]}``; keys ``transport`` (``stdio``, ``http`` = MCP streamable HTTP, ``sse``),
   ``command``, ``args``, ``cwd`` (relative to the file's folder), ``env``, ``url``,
   ``headers``, ``description``, ``optional`` (and hive_actors' ``ping_interval``).
2. ``mcp_registry.json`` beside it: ``{"include": ["name", ...]}``, and ``agent.json``'s
   top-level ``mcp_servers: [{"name": ...}]``, both resolved against
   ``$HIVE_HOME/mcp_registry/installed.json`` (HIVE_HOME defaults to ``~/.hive``).
3. Files or dicts given by the caller (``--mcp-config``, ``AgentRunner.load(mcp_servers=)``).

``${VAR}`` in ``env``, ``headers`` and ``url`` is expanded from the environment; a missing
variable is an `MCPConfigError` naming it, the server and the file. Reading never starts
anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from hive_actors.errors import MCPConfigError

__all__ = ["MCPServerConfig", "agent_mcp_servers", "hive_home", "load_mcp_config",
           "parse_mcp_config", "servers_for_agent"]

TRANSPORTS = ("stdio", "http", "sse")
SERVER_FILE = "mcp_servers.json"
REGISTRY_FILE = "mcp_registry.json"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@attrs.frozen
class MCPServerConfig:
    """One tool server: how to reach it and where it was declared."""

    name: str
    transport: str = "stdio"
    command: str | None = None
    args: tuple[str, ...] = ()
    cwd: Path | None = None
    env: Mapping[str, str] = attrs.field(factory=dict)
    url: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    description: str = ""
    optional: bool = False
    source: str = "<config>"
    # seconds between pings of an idle session (a dead or hung server is then restarted
    # before the next call finds it); None: never. A hive_actors key, not Hive's.
    ping_interval: float | None = 10.0

    @property
    def target(self) -> str:
        """The command line or URL, for messages."""
        if self.transport == "stdio":
            return " ".join([self.command or "", *self.args]).strip()
        return self.url or ""


def hive_home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("HIVE_HOME") or "~/.hive").expanduser()


def parse_mcp_config(data: Any, *, base: Path, source: str,
                     environ: Mapping[str, str] | None = None) -> list[MCPServerConfig]:
    """The servers a decoded ``mcp_servers.json`` declares (either shape). ``base`` is the
    folder ``cwd`` is relative to. Raises MCPConfigError naming ``source`` and the server."""
    env = os.environ if environ is None else environ
    if not isinstance(data, dict):
        raise MCPConfigError(f"{source}: must be a JSON object of servers, got {type(data).__name__}")
    if "servers" in data and isinstance(data["servers"], list):
        entries: list[tuple[str, Any]] = []
        for i, item in enumerate(data["servers"]):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                raise MCPConfigError(f"{source}: servers[{i}] needs a \"name\" string")
            entries.append((item["name"], item))
    else:
        entries = list(data.items())
    return [_server(name, spec, base=base, source=source, environ=env) for name, spec in entries]


def load_mcp_config(value: str | Path | Mapping[str, Any],
                    environ: Mapping[str, str] | None = None) -> list[MCPServerConfig]:
    """Servers from a file path or an already decoded dict (relative ``cwd``: the file's
    folder, or the current folder for a dict). Raises MCPConfigError."""
    if isinstance(value, Mapping):
        return parse_mcp_config(dict(value), base=Path.cwd(), source="<mcp_servers dict>",
                                environ=environ)
    path = Path(value).expanduser()
    return parse_mcp_config(_read(path), base=path.parent.resolve(), source=str(path),
                            environ=environ)


def agent_mcp_servers(folder: Path, agent_json: Mapping[str, Any] | None = None,
                      environ: Mapping[str, str] | None = None) -> list[MCPServerConfig]:
    """Every server the agent folder declares (sources 1 and 2 of the module docstring)."""
    servers: list[MCPServerConfig] = []
    file = folder / SERVER_FILE
    if file.is_file():
        servers += load_mcp_config(file, environ)
    names: list[tuple[str, str]] = []
    registry_file = folder / REGISTRY_FILE
    if registry_file.is_file():
        include = _read(registry_file).get("include", [])
        if not isinstance(include, list) or not all(isinstance(n, str) for n in include):
            raise MCPConfigError(f"{registry_file}: \"include\" must be a list of server names")
        names += [(n, str(registry_file)) for n in include]
    listed = (agent_json or {}).get("mcp_servers")
    if isinstance(listed, list):
        for i, item in enumerate(listed):
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str):
                raise MCPConfigError(f"{folder / 'agent.json'}: mcp_servers[{i}] needs a name")
            names.append((name, str(folder / "agent.json")))
    if names:
        servers += _from_registry(names, environ)
    return _dedupe(servers)


def servers_for_agent(path: str | Path, extra: Any = None,
                      environ: Mapping[str, str] | None = None) -> list[MCPServerConfig]:
    """The servers of the agent at ``path`` (its folder's declarations), then ``extra``
    (``--mcp-config`` files, ``mcp_servers=``: a file, a decoded dict, an MCPServerConfig,
    or a list of them). Raises MCPConfigError."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    agent_json: Any = None
    with contextlib.suppress(OSError, ValueError, RecursionError):  # the loader reports these
        agent_json = json.loads((folder / "agent.json").read_text(encoding="utf-8"))
    servers = agent_mcp_servers(folder, agent_json if isinstance(agent_json, dict) else None,
                                environ)
    if extra is None:
        items: list[Any] = []
    elif isinstance(extra, (str, Path, Mapping, MCPServerConfig)):
        items = [extra]
    else:
        items = list(extra)
    for item in items:
        servers += [item] if isinstance(item, MCPServerConfig) else load_mcp_config(item, environ)
    return _dedupe(servers)


def _from_registry(names: Iterable[tuple[str, str]],
                   environ: Mapping[str, str] | None) -> list[MCPServerConfig]:
    installed_file = hive_home(environ) / "mcp_registry" / "installed.json"
    installed: dict[str, Any] = {}
    if installed_file.is_file():
        raw = _read(installed_file)
        installed = raw.get("servers", raw) if isinstance(raw.get("servers"), dict) else raw
    out = []
    for name, where in names:
        spec = installed.get(name)
        if not isinstance(spec, dict):
            raise MCPConfigError(
                f"{where}: MCP server {name!r} is not in the registry {installed_file} "
                f"(known: {', '.join(sorted(installed)) or 'none'})")
        out.append(_server(name, spec, base=installed_file.parent, source=str(installed_file),
                           environ=os.environ if environ is None else environ))
    return out


def _dedupe(servers: list[MCPServerConfig]) -> list[MCPServerConfig]:
    """One server per name: a name declared twice alike (e.g. the registry's include and
    agent.json's list) counts once; declared twice differently is an error naming both."""
    seen: dict[str, MCPServerConfig] = {}
    for s in servers:
        first = seen.setdefault(s.name, s)
        if first is not s and attrs.evolve(first, source=s.source) != s:
            raise MCPConfigError(
                f"MCP server {s.name!r} is declared twice, differently: in {first.source} "
                f"({first.target or first.transport}) and in {s.source} "
                f"({s.target or s.transport}); rename one or remove one")
    return list(seen.values())


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MCPConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise MCPConfigError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MCPConfigError(f"{path}: must be a JSON object, got {type(data).__name__}")
    return data


def _server(name: str, spec: Any, *, base: Path, source: str,
            environ: Mapping[str, str]) -> MCPServerConfig:
    where = f"{source}: server {name!r}"
    if not isinstance(spec, dict):
        raise MCPConfigError(f"{where} must be an object, got {type(spec).__name__}")
    transport = str(spec.get("transport") or ("stdio" if spec.get("command") else "http"))
    if transport == "streamable-http":
        transport = "http"
    if transport not in TRANSPORTS:
        raise MCPConfigError(f"{where}: transport {transport!r} is not supported "
                             f"(supported: {', '.join(TRANSPORTS)})")

    def strings(key: str, kind: type) -> Any:
        value = spec.get(key, kind())
        ok = (isinstance(value, list) and all(isinstance(v, str) for v in value)) if kind is list \
            else (isinstance(value, dict) and all(isinstance(v, str) for v in value.values()))
        if not ok:
            raise MCPConfigError(f"{where}: {key!r} must be a {'list' if kind is list else 'map'}"
                                 " of strings")
        return value

    def expand(text: str, field: str) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(1) not in environ:
                raise MCPConfigError(f"{where}: {field} uses ${{{m.group(1)}}}, which is not set "
                                     "in the environment")
            return environ[m.group(1)]
        return _VAR.sub(one, text)

    env = {k: expand(v, f"env[{k!r}]") for k, v in strings("env", dict).items()}
    headers = {k: expand(v, f"headers[{k!r}]") for k, v in strings("headers", dict).items()}
    url = spec.get("url")
    command = spec.get("command")
    if transport == "stdio":
        if not isinstance(command, str) or not command:
            raise MCPConfigError(f"{where}: a stdio server needs a \"command\"")
    elif not isinstance(url, str) or not url:
        raise MCPConfigError(f"{where}: a {transport} server needs a \"url\"")
    optional = spec.get("optional", False)
    if not isinstance(optional, bool):
        raise MCPConfigError(f"{where}: \"optional\" must be true or false")
    ping = spec.get("ping_interval", 10.0)
    if ping is not None and (isinstance(ping, bool) or not isinstance(ping, (int, float))
                             or not ping > 0):
        raise MCPConfigError(f"{where}: \"ping_interval\" must be a positive number or null")
    cwd = spec.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise MCPConfigError(f"{where}: \"cwd\" must be a string")
    return MCPServerConfig(
        name=name, transport=transport, command=command if transport == "stdio" else None,
        args=tuple(strings("args", list)), cwd=(base / cwd) if cwd else None, env=env,
        url=expand(url, "url") if isinstance(url, str) else None, headers=headers,
        description=str(spec.get("description", "")), optional=optional,
        source=source, ping_interval=float(ping) if ping is not None else None,
    )
