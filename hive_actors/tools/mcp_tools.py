"""MCP tools as registry Tools: context parameters hidden from the model and injected per
call, results converted (`TextContent` joined, `ImageContent` an image part, ``isError`` a
tool error), and the registry rules (the first registration of a name wins; an agent's
tools.py wins over every server; each shadowed tool is logged)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mcp import types

from hive_actors.tools.context import call_record, hide_context_params, inject_context_params
from hive_actors.tools.mcp_client import MCPClient
from hive_actors.tools.registry import Tool, ToolRegistry
from hive_actors.tools.result import ToolOutput

__all__ = ["convert_result", "mcp_registry", "mcp_tool"]

def mcp_tool(client: MCPClient, spec: types.Tool) -> Tool:
    """A Tool calling ``spec.name`` on ``client``'s server."""
    visible, declared = hide_context_params(spec.input_schema or {"type": "object"})
    name = spec.name

    async def call(**arguments: Any) -> ToolOutput:
        sent = inject_context_params(arguments, declared)
        call_record().update(server=client.name, arguments=sent)
        return convert_result(await client.call(name, sent))

    return Tool(name=name, description=spec.description or "", parameters=visible, fn=call,
                idempotent=repeatable(spec.annotations))


def repeatable(hints: types.ToolAnnotations | None) -> bool:
    """False when the server says calling the tool twice may do harm: ``idempotentHint``
    given as false on a tool that is not read-only (unset hints: repeatable, so a tool in
    flight at a crash runs again)."""
    if hints is None or hints.read_only_hint:
        return True
    return hints.idempotent_hint is not False


def convert_result(result: types.CallToolResult) -> ToolOutput:
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    for item in result.content:
        if isinstance(item, types.TextContent):
            texts.append(item.text)
            parts.append({"type": "text", "text": item.text})
        elif isinstance(item, types.ImageContent):
            texts.append(f"[image {item.mime_type}]")
            parts.append({"type": "image_url",
                          "image_url": {"url": f"data:{item.mime_type};base64,{item.data}"}})
        else:
            texts.append(f"[{item.type} content]")
    if not result.content and result.structured_content is not None:
        texts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    text = "\n".join(texts)
    with_images = any(p["type"] == "image_url" for p in parts)
    return ToolOutput(text, bool(result.is_error), tuple(parts) if with_images else ())


def mcp_registry(base: ToolRegistry,
                 clients: Iterable[MCPClient]) -> tuple[ToolRegistry, list[str]]:
    """A new registry: ``base``'s tools, then each client's in order, names already taken
    being skipped; and a line per skipped tool ("tool 'x' of MCP server 'b' is shadowed by
    ..."). The new registry keeps ``base``'s tool_executor."""
    registry = base.copy()
    owner = {name: "tools.py" for name in base.names()}
    shadowed: list[str] = []
    for client in clients:
        for spec in client.tools:
            taken = owner.get(spec.name)
            if taken is not None:
                shadowed.append(f"tool {spec.name!r} of MCP server {client.name!r} is shadowed "
                                f"by {taken}")
                continue
            owner[spec.name] = f"MCP server {client.name!r}"
            registry.register(mcp_tool(client, spec))
    return registry, shadowed
